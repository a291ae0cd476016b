/**
 * How the CLI finds a running job: at start the job writes `<root>/<job>/rest.json` (its REST
 * address, pid, host and where its token is), and removes it when it stops. A file left by a
 * killed process is recognised as stale: its pid is gone (same host) or its address refuses.
 */
import { hostname } from 'node:os';
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { RESOLVED_CONFIG_ENV } from '../config/job-config.ts';
import { writePrivateFile } from './private-file.ts';
import type { TokenReference } from './rest-token.ts';

export const REGISTRATION_FILE = 'rest.json';

export interface JobRegistration {
  readonly job: string;
  /** e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly pid: number;
  readonly host: string;
  readonly startedAtMs: number;
  readonly token: TokenReference;
  /** How this process was started, so `cdcflow rescale` can start it again. */
  readonly command: { readonly module: string; readonly args: readonly string[]; readonly cwd: string };
  /** The configuration the job loaded (loadJobConfig), without its REST token; absent for jobs built without it. */
  readonly config?: unknown;
}

export function registrationFile(root: string, job: string): string {
  return join(root, job, REGISTRATION_FILE);
}

export async function register(
  root: string,
  registration: Pick<JobRegistration, 'job' | 'url' | 'token'>,
): Promise<() => Promise<void>> {
  const file = registrationFile(root, registration.job);
  const command = { module: resolve(process.argv[1] ?? ''), args: process.argv.slice(2), cwd: process.cwd() };
  const config = loadedConfig();
  const own: JobRegistration = {
    ...registration,
    pid: process.pid,
    host: hostname(),
    startedAtMs: Date.now(),
    command,
    ...(config === undefined ? {} : { config }),
  };
  await writePrivateFile(file, `${JSON.stringify(own, null, 2)}\n`);
  return async () => {
    // Another instance may have registered since (after this one lost its lease): leave theirs.
    const current = await readRegistration(root, registration.job);
    if (current?.pid === own.pid && current.host === own.host && current.startedAtMs === own.startedAtMs)
      await rm(file, { force: true });
  };
}

export async function readRegistration(root: string, job: string): Promise<JobRegistration | undefined> {
  let text: string;
  try {
    text = await readFile(registrationFile(root, job), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as JobRegistration;
  } catch {
    return undefined; // half-written by a crashed job: as good as absent
  }
}

/** False when the registering process is certainly gone (same host, no such pid). */
export function registrantMayBeAlive(registration: JobRegistration): boolean {
  if (registration.host !== hostname()) return true;
  try {
    process.kill(registration.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function loadedConfig(): unknown {
  const text = process.env[RESOLVED_CONFIG_ENV];
  if (text === undefined) return undefined;
  const config = JSON.parse(text) as { rest?: Record<string, unknown> };
  // The token stays where the operator put it; the file only says a configured one is in use.
  if (config.rest !== undefined) delete config.rest['token'];
  return config;
}
