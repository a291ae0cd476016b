/**
 * Finds a running job through the checkpoint root (`<root>/<job>/rest.json`, see
 * runtime/rest/registration.ts) and calls its REST API. Every way a job can be absent ends in a
 * message that says so and what to do.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { jobsUnder } from '../checkpoint-catalog.ts';
import { readRegistration, registrantMayBeAlive, type JobRegistration } from '../rest/registration.ts';
import type { CliContext } from './cli-context.ts';
import { CliError, NOT_RUNNING } from './cli-error.ts';

export class JobClient {
  private constructor(
    readonly job: string,
    readonly registration: JobRegistration,
    private readonly token: () => Promise<string>,
  ) {}

  /** The running job `job`, or a CliError saying why there is none. */
  static async connect(ctx: CliContext, job: string): Promise<JobClient> {
    const registration = await findRegistration(ctx, job);
    const client = new JobClient(job, registration, () => tokenOf(ctx, registration));
    try {
      await client.call('GET', `/jobs/${job}`, undefined, 5_000);
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw new CliError(
        `job '${job}' is not running: nothing answers at ${registration.url} (pid ${registration.pid} on ${registration.host}; it may have just stopped, or be hung)`,
        NOT_RUNNING,
      );
    }
    return client;
  }

  async get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }

  async send<T>(method: 'POST' | 'PATCH', path: string, body: unknown, timeoutMs = 300_000): Promise<T> {
    return this.call<T>(method, path, body, timeoutMs);
  }

  private async call<T>(method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
    const headers: Record<string, string> = {};
    if (method !== 'GET') {
      headers['authorization'] = `Bearer ${await this.token()}`;
      headers['content-type'] = 'application/json';
    }
    const response = await fetch(`${this.registration.url}${path}`, {
      method,
      headers,
      signal: AbortSignal.timeout(timeoutMs),
      ...(method === 'GET' ? {} : { body: JSON.stringify(body ?? {}) }),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { errors: [text.trim()] };
    }
    if (!response.ok) {
      const errors = (parsed as { errors?: unknown }).errors;
      throw new CliError(
        `${this.job}: ${Array.isArray(errors) ? errors.join('; ') : text} (HTTP ${response.status} from ${method} ${path})`,
      );
    }
    return parsed as T;
  }
}

async function findRegistration(ctx: CliContext, job: string): Promise<JobRegistration> {
  const dir = join(ctx.root, job);
  if (!existsSync(dir)) {
    const known = await jobsUnder(ctx.root);
    throw new CliError(
      `no job '${job}' under the checkpoint root ${ctx.root} (${known.length === 0 ? 'it holds no jobs' : `it holds: ${known.join(', ')}`}); ` +
        'a job started with another root needs --checkpoint-root or CDCFLOW_CHECKPOINT_DIR',
      NOT_RUNNING,
    );
  }
  const registration = await readRegistration(ctx.root, job);
  if (registration === undefined) {
    throw new CliError(
      `job '${job}' is not running (no REST registration in ${dir}); its checkpoints: cdcflow checkpoints list ${job}`,
      NOT_RUNNING,
    );
  }
  if (!registrantMayBeAlive(registration)) {
    throw new CliError(
      `job '${job}' is not running: its last process (pid ${registration.pid}) is gone without unregistering (killed?); start it with cdcflow run`,
      NOT_RUNNING,
    );
  }
  return registration;
}

async function tokenOf(ctx: CliContext, registration: JobRegistration): Promise<string> {
  if ('file' in registration.token) {
    try {
      return (await readFile(registration.token.file, 'utf8')).trim();
    } catch (error) {
      throw new CliError(
        `cannot read the REST token of '${registration.job}' at ${registration.token.file} (${(error as Error).message}): run as the user that runs the job`,
      );
    }
  }
  if (ctx.configuredToken !== undefined) return ctx.configuredToken;
  if (ctx.configuredTokenFile !== undefined) return (await readFile(ctx.configuredTokenFile, 'utf8')).trim();
  throw new CliError(
    `job '${registration.job}' uses a configured REST token: set CDCFLOW_REST_TOKEN (or rest.token / rest.tokenFile in --config)`,
  );
}
