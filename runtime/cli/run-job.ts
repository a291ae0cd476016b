/**
 * `cdcflow run`: the job file runs in a child `node --max-semi-space-size=32 --import tsx JOB.ts <flags>`
 * (job-node-flags.ts), so it reads
 * its configuration exactly as when started by hand (runtime/config/job-flags.ts). The child has
 * its own process group; the CLI forwards SIGINT, SIGTERM and SIGHUP to it once (a terminal's
 * Ctrl-C would otherwise reach it twice) and exits with its exit code.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { JOB_FLAGS } from '../config/index.ts';
import { jobNodeFlags } from './job-node-flags.ts';

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export function runJobFile(module: string, args: readonly string[], options: { cwd?: string } = {}): Promise<number> {
  const child = spawn(process.execPath, [...jobNodeFlags(), '--import', import.meta.resolve('tsx'), module, ...args], {
    stdio: 'inherit',
    detached: true,
    cwd: options.cwd ?? process.cwd(),
  });
  const forward = (signal: NodeJS.Signals) => () => void child.kill(signal);
  const handlers = FORWARDED.map((signal) => [signal, forward(signal)] as const);
  for (const [signal, handler] of handlers) process.on(signal, handler);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      for (const [s, handler] of handlers) process.off(s, handler);
      resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal]));
    });
  });
}

/** The job flags commander parsed (camelCase keys), back into the job's command line. */
export function jobArgs(options: Readonly<Record<string, unknown>>): string[] {
  const args: string[] = [];
  for (const spec of JOB_FLAGS) {
    const value = options[spec.flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())];
    if (value === undefined || value === false) continue;
    if (spec.type === 'boolean') args.push(`--${spec.flag}`);
    else for (const v of Array.isArray(value) ? value : [value]) args.push(`--${spec.flag}`, String(v));
  }
  return args;
}

/** `args` without the flags named (and their values): what a restart replaces. */
export function withoutFlags(args: readonly string[], flags: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const name = /^--([^=]+)/.exec(arg)?.[1];
    if (name === undefined || !flags.includes(name)) {
      kept.push(arg);
      continue;
    }
    const spec = JOB_FLAGS.find((f) => f.flag === name);
    if (spec?.type === 'string' && !arg.includes('=')) i++; // skip its value
  }
  return kept;
}
