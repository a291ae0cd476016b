/**
 * One measurement per child process, so peak RSS, heap and CPU time are the measurement's own.
 * The child prints `RESULT <json>` and exits; the parent collects it.
 */
import { spawn } from 'node:child_process';
import { jobNodeFlags } from '../../runtime/cli/job-node-flags.ts';

/** What every measurement reports. */
export interface Measured {
  /** Kafka messages (changes and tombstones) the measurement covers. */
  readonly messages: number;
  /** From the first record seen to the last. */
  readonly seconds: number;
  /** Adds start-up, group join and the final checkpoint. */
  readonly wallSeconds: number;
  /** Process CPU time (all threads) over `seconds`. */
  readonly cpuSeconds: number;
  readonly maxRssMb: number;
}

export const rate = (r: Measured): number => r.messages / r.seconds;

const cpuSeconds = (): number => {
  const cpu = process.cpuUsage();
  return (cpu.user + cpu.system) / 1e6;
};

/** Timing of the records' passage: wall clock and process CPU at the first and the last record. */
export interface Span {
  first: number;
  last: number;
  cpuAtFirst: number;
  cpuAtLast: number;
}

export const newSpan = (): Span => ({ first: 0, last: 0, cpuAtFirst: 0, cpuAtLast: 0 });

export function mark(span: Span): void {
  if (span.first === 0) {
    span.first = performance.now();
    span.cpuAtFirst = cpuSeconds();
  }
  span.last = performance.now();
  span.cpuAtLast = cpuSeconds();
}

export function finish(messages: number, span: Span, wallStart: number): Measured {
  return {
    messages,
    seconds: (span.last - span.first) / 1000,
    wallSeconds: (Date.now() - wallStart) / 1000,
    cpuSeconds: span.cpuAtLast - span.cpuAtFirst,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
  };
}

export function reportResult(result: unknown): void {
  console.log(`RESULT ${JSON.stringify(result)}`);
}

/** A benchmark child: its `RESULT <json>` line, and a way to send it lines on stdin. */
export interface BenchChild<R> {
  readonly result: Promise<R>;
  send(line: string): void;
}

/**
 * Runs `script --child <spec JSON>` under the same Node flags (tsx) plus those `cdcflow run` gives a
 * job (runtime/cli/job-node-flags.ts), and resolves with the JSON the
 * child printed after `RESULT `. Other stdout lines go to `onLine`; stderr is inherited.
 */
export function startChild<R>(
  script: string,
  spec: unknown,
  name: string,
  onLine: (line: string) => void = () => undefined,
): BenchChild<R> {
  const proc = spawn(
    process.execPath,
    [...jobNodeFlags(), ...process.execArgv, script, '--child', JSON.stringify(spec)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const result = new Promise<R>((resolve, reject) => {
    let out = '';
    let pending = '';
    let hung: NodeJS.Timeout | undefined;
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (!line.startsWith('RESULT ')) onLine(line);
      // A child that reported but does not exit left something running (a consumer, a worker).
      hung ??= out.includes('RESULT ')
        ? setTimeout(
            () => (console.error(`${name}: the child did not exit 30 s after finishing; killed`), proc.kill('SIGKILL')),
            30_000,
          )
        : undefined;
    });
    proc.on('error', reject);
    proc.on('exit', (code) => {
      clearTimeout(hung);
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line !== undefined) resolve(JSON.parse(line.slice('RESULT '.length)) as R);
      else reject(new Error(`${name} exited with code ${code}:\n${out}`));
    });
  });
  proc.stdin.on('error', () => undefined); // the child may exit before reading what we sent
  return { result, send: (line) => void proc.stdin.write(`${line}\n`) };
}

/** Runs `script --child <spec>` in a fresh Node process (same loader flags) and returns its RESULT. */
export function runChild<R>(script: string, spec: unknown, label: string): Promise<R> {
  return startChild<R>(script, spec, label).result;
}
