/**
 * Runs one peer job as a process of its own, bounded in time, and measures it from outside: the
 * peer prints `RESULT {"first","last","records"}` (epoch ms of its first and last record), the
 * parent samples the process's CPU time and peak RSS from /proc every 100 ms and interpolates the
 * CPU at the first and last record. The job's output (digest, window results, late LSNs) is a file
 * of JSON lines.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { PeerLaunch } from './peer-build.ts';

export interface PeerMeasurement {
  readonly seconds: number;
  readonly wallSeconds: number;
  readonly cpuSeconds: number;
  readonly maxRssMb: number;
  readonly records: number;
  /** The output file's lines, parsed. */
  readonly lines: readonly Record<string, unknown>[];
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

interface Sample {
  readonly at: number;
  readonly cpu: number;
}

function readProc(pid: number): { cpu: number; hwmKb: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at ") ".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpu = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { cpu, hwmKb: Number(hwm?.[1] ?? 0) };
  } catch {
    return undefined; // gone
  }
}

/** CPU seconds at `at`, linear between the samples around it. */
export function cpuAt(samples: readonly Sample[], at: number): number {
  if (samples.length === 0) return NaN;
  const after = samples.findIndex((s) => s.at >= at);
  if (after <= 0) return (after === 0 ? samples[0] : samples.at(-1))?.cpu ?? NaN;
  const a = samples[after - 1] as Sample;
  const b = samples[after] as Sample;
  return b.at === a.at ? b.cpu : a.cpu + ((b.cpu - a.cpu) * (at - a.at)) / (b.at - a.at);
}

export function runPeer(
  launch: PeerLaunch,
  jobArgs: readonly string[],
  outFile: string,
  timeoutMs: number,
  log: (line: string) => void,
): Promise<PeerMeasurement> {
  const started = Date.now();
  const proc = spawn(launch.command, [...launch.args, ...jobArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  const samples: Sample[] = [];
  let hwmKb = 0;
  const sample = () => {
    if (proc.pid === undefined) return;
    const p = readProc(proc.pid);
    if (p === undefined) return;
    samples.push({ at: Date.now(), cpu: p.cpu });
    hwmKb = Math.max(hwmKb, p.hwmKb);
  };
  const sampler = setInterval(sample, 100);
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    sample(); // the RESULT line comes just before exit: take a last sample while the process is there
  });
  proc.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  const killer = setTimeout(() => {
    log(`timed out after ${timeoutMs / 1000} s: killed`);
    proc.kill('SIGKILL');
  }, timeoutMs);
  return new Promise((resolve, reject) => {
    proc.on('error', (error) => {
      clearInterval(sampler);
      clearTimeout(killer);
      reject(error);
    });
    proc.on('exit', (code, signal) => {
      clearInterval(sampler);
      clearTimeout(killer);
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || line === undefined) {
        const tail = stderr
          .trim()
          .split('\n')
          .filter((l) => /exception|error|failed|timed out/i.test(l))
          .slice(-3)
          .join(' | ');
        reject(new Error(`${signal ?? `exit ${code}`}${tail === '' ? '' : `: ${tail.slice(0, 300)}`}`));
        return;
      }
      const result = JSON.parse(line.slice('RESULT '.length)) as { first: number; last: number; records: number };
      const lines = existsSync(outFile)
        ? readFileSync(outFile, 'utf8')
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => JSON.parse(l) as Record<string, unknown>)
        : [];
      resolve({
        seconds: (result.last - result.first) / 1000,
        wallSeconds: (Date.now() - started) / 1000,
        cpuSeconds: cpuAt(samples, result.last) - cpuAt(samples, result.first),
        maxRssMb: hwmKb / 1024,
        records: result.records,
        lines,
      });
    });
  });
}
