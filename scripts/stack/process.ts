import { spawn, type SpawnOptions } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { stackPaths } from './paths.ts';

export interface DaemonSpec {
  readonly service: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Run as this uid/gid (Postgres refuses to run as root). */
  readonly uid?: number;
  readonly gid?: number;
}

/** Starts a long-lived process detached from us, output appended to the service's log file. */
export function startDaemon(spec: DaemonSpec): number {
  const logFile = stackPaths.log(spec.service);
  mkdirSync(dirname(logFile), { recursive: true });
  mkdirSync(stackPaths.run, { recursive: true });
  const fd = openSync(logFile, 'a');
  const options: SpawnOptions = {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, ...spec.env },
    ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
    ...(spec.uid === undefined ? {} : { uid: spec.uid }),
    ...(spec.gid === undefined ? {} : { gid: spec.gid }),
  };
  const child = spawn(spec.command, [...spec.args], options);
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not spawn ${spec.command}`);
  child.unref();
  writeFileSync(stackPaths.pid(spec.service), String(child.pid));
  return child.pid;
}

export function readPid(service: string): number | undefined {
  const file = stackPaths.pid(service);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid of a process this project started for `service`, if it still runs. */
export function ownedPid(service: string): number | undefined {
  const pid = readPid(service);
  return pid !== undefined && isAlive(pid) ? pid : undefined;
}

/** Stops only what we started: TERM the process group, then KILL it after the grace period. */
export async function stopDaemon(service: string, graceMs = 20_000): Promise<boolean> {
  const pid = ownedPid(service);
  rmSync(stackPaths.pid(service), { force: true });
  if (pid === undefined) return false;
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(200);
  if (isAlive(pid)) signalGroup(pid, 'SIGKILL');
  return true;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs a command to completion, returning its output; throws with the output on failure. */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.gid === undefined ? {} : { gid: options.gid }),
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(output);
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${output.slice(-4000)}`));
    });
  });
}
