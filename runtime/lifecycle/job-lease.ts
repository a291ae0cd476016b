/**
 * One instance per job: an exclusive lease file `<checkpoint root>/<job>/lease.json` holding the
 * holder's pid, host, start time and a random token.
 *
 * Taking it is atomic: the lease is written to a private temp file and hard-linked to the lease
 * name (`link` fails if the name exists, on local filesystems and NFS alike). A lease whose holder
 * is gone is taken over only when that is certain: same host and the pid is not alive (a crashed
 * or SIGKILLed job); a lease of another host (whose pid cannot be checked from here) when its
 * holder stopped renewing it (`renewedAtMs` older than `staleAfterMs`, 60 s: the holder renews
 * every 10 s), or when the operator says so (`takeoverLease`). So a job rescheduled to another
 * machine (a Kubernetes pod on a shared volume) starts within a minute of its predecessor's death. The takeover moves the stale file aside with
 * `rename` and checks that what it moved is the lease it judged stale; if another starter won the
 * race in between, it puts that lease back and fails.
 */
import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CdcflowError } from '../../state/errors.ts';

export const LEASE_FILE = 'lease.json';
const RENEW_MS = 10_000;
const STALE_AFTER_MS = 60_000;

export interface LeaseInfo {
  readonly pid: number;
  readonly host: string;
  readonly startedAtMs: number;
  /** The holder renews the lease every `RENEW_MS`; a lease of another host not renewed for `staleAfterMs` is stale. */
  readonly renewedAtMs?: number;
  readonly token: string;
  /** The REST address of the holder, once it serves one (the CLI finds running jobs by it). */
  readonly rest?: string;
}

/** Another instance holds the job's lease: the start is refused. */
export class JobLeaseHeldError extends CdcflowError {
  constructor(
    readonly job: string,
    readonly holder: LeaseInfo,
    readonly path: string,
  ) {
    super(
      `job '${job}' is already running: its lease ${path} is held by pid ${holder.pid} on ${holder.host} since ${new Date(holder.startedAtMs).toISOString()}` +
        (holder.rest === undefined ? '' : ` (REST ${holder.rest})`) +
        `. Stop that instance first (\`cdcflow stop\`). A holder on another host that stops renewing the lease (last renewed ${new Date(holder.renewedAtMs ?? holder.startedAtMs).toISOString()}) is taken over after a minute; to take it over now because it is certainly dead, start with lifecycle.takeoverLease (\`--takeover-lease\`).`,
      { domain: 'user', retriable: false },
    );
  }
}

/** Leases this process holds, by path: a second environment of the same job in one process is refused too. */
const heldHere = new Map<string, string>();

export interface LeaseOptions {
  /** Take over a lease whose holder cannot be checked (another host) or is this process's leftover. */
  readonly takeover?: boolean;
  /** @default 60000 */
  readonly staleAfterMs?: number;
  /** Another instance took the lease over while we held it (we were paused past staleAfterMs). */
  readonly onLost?: (holder: LeaseInfo) => void;
}

export class JobLease {
  private released = false;
  private readonly renewal: NodeJS.Timeout;

  private constructor(
    readonly path: string,
    private info: LeaseInfo,
    onLost: ((holder: LeaseInfo) => void) | undefined,
  ) {
    this.renewal = setInterval(() => void this.renew(onLost), RENEW_MS);
    this.renewal.unref();
  }

  get holder(): LeaseInfo {
    return this.info;
  }

  /** Takes the lease of `job` under `jobRoot`, or throws JobLeaseHeldError naming the holder. */
  static async acquire(job: string, jobRoot: string, options: LeaseOptions = {}): Promise<JobLease> {
    await mkdir(jobRoot, { recursive: true });
    const path = join(jobRoot, LEASE_FILE);
    const now = Date.now();
    const info: LeaseInfo = {
      pid: process.pid,
      host: hostname(),
      startedAtMs: now,
      renewedAtMs: now,
      token: randomUUID(),
    };
    const temp = join(jobRoot, `.lease-${info.token}.tmp`);
    await writeFile(temp, JSON.stringify(info));
    try {
      for (let tries = 0; tries < 3; tries++) {
        if (await tryLink(temp, path)) {
          heldHere.set(path, info.token);
          return new JobLease(path, info, options.onLost);
        }
        const holder = await readLease(path);
        if (holder === undefined) continue; // released meanwhile, or half-written: try again
        if (!isStale(holder, path, options)) throw new JobLeaseHeldError(job, holder, path);
        await takeOver(path, holder, job);
      }
      const holder = await readLease(path);
      throw holder === undefined
        ? new CdcflowError(
            `could not take the lease ${path}: it keeps changing (several instances starting at once?)`,
            { domain: 'user', retriable: false },
          )
        : new JobLeaseHeldError(job, holder, path);
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  /** Records the REST address in the lease (for the CLI). */
  async setRestAddress(rest: string): Promise<void> {
    this.info = { ...this.info, rest };
    await this.write();
  }

  private async renew(onLost: ((holder: LeaseInfo) => void) | undefined): Promise<void> {
    if (this.released) return;
    const current = await readLease(this.path);
    if (current !== undefined && current.token !== this.info.token) {
      clearInterval(this.renewal);
      this.released = true;
      onLost?.(current);
      return;
    }
    this.info = { ...this.info, renewedAtMs: Date.now() };
    await this.write().catch(() => undefined);
  }

  private async write(): Promise<void> {
    if (this.released) return;
    const temp = `${this.path}.${this.info.token}.tmp`;
    await writeFile(temp, JSON.stringify(this.info));
    await rename(temp, this.path);
  }

  /** Gives the lease up, if it is still ours. */
  async release(): Promise<void> {
    clearInterval(this.renewal);
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.path);
    const current = await readLease(this.path);
    if (current?.token === this.info.token) await unlink(this.path).catch(() => undefined);
  }
}

/** The lease at `path`, if there is a readable one. */
export async function readLease(path: string): Promise<LeaseInfo | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<LeaseInfo>;
    if (typeof parsed.pid !== 'number' || typeof parsed.host !== 'string' || typeof parsed.token !== 'string')
      return undefined;
    return parsed as LeaseInfo;
  } catch {
    return undefined;
  }
}

function isStale(holder: LeaseInfo, path: string, options: LeaseOptions): boolean {
  if (holder.host !== hostname())
    return (
      options.takeover === true ||
      Date.now() - (holder.renewedAtMs ?? holder.startedAtMs) > (options.staleAfterMs ?? STALE_AFTER_MS)
    );
  if (holder.pid === process.pid) {
    // Ours: held by a live environment of this process (refused), or left by one that died without releasing.
    return heldHere.get(path) !== holder.token;
  }
  return !pidAlive(holder.pid) || options.takeover === true;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the pid exists but belongs to someone else — alive, as far as we can tell.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function tryLink(temp: string, path: string): Promise<boolean> {
  try {
    await link(temp, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

async function takeOver(path: string, stale: LeaseInfo, job: string): Promise<void> {
  const aside = `${path}.stale-${randomUUID()}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const moved = await readLease(aside);
  if (moved !== undefined && moved.token !== stale.token) {
    // Another starter replaced the stale lease between our read and our rename: put it back.
    await tryLink(aside, path);
    await unlink(aside).catch(() => undefined);
    throw new JobLeaseHeldError(job, moved, path);
  }
  await unlink(aside).catch(() => undefined);
}
