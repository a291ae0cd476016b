/**
 * The job lifecycle without services: one instance per job (lease), stop honoured during the
 * restart back-off, a graceful stop that ends with a final checkpoint, and an explicit restore
 * target that never falls back to the latest checkpoint.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointNotFoundError } from '../../../checkpoints/index.ts';
import { collectSink } from '../../../operators/sinks/collect-sink.ts';
import {
  JobLease,
  JobLeaseHeldError,
  LEASE_FILE,
  StopDeadlineExceededError,
  StreamEnvironment,
  fromCollection,
  type JobState,
} from '../../../runtime/index.ts';
import { countingSource } from '../../support/counting-source.ts';

const work = mkdtempSync(join(tmpdir(), 'cdcflow-lifecycle-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let counter = 0;
const fresh = (label: string) => ({ jobName: `lifecycle-${label}-${++counter}`, dir: join(work, `run-${counter}`) });

function environment(
  name: { jobName: string; dir: string },
  extra: Partial<Parameters<typeof StreamEnvironment.create>[0]> = {},
): StreamEnvironment {
  return StreamEnvironment.create({
    jobName: name.jobName,
    checkpoints: { dir: name.dir, intervalMs: 50 },
    state: { backend: 'memory' },
    lifecycle: { handleSignals: false },
    ...extra,
  });
}

const untilState = (env: StreamEnvironment, state: JobState) =>
  new Promise<void>((resolve) => env.onEvent((e) => e.type === 'state' && e.state === state && resolve()));
const untilCheckpoint = (env: StreamEnvironment) =>
  new Promise<number>((resolve) => env.onEvent((e) => e.type === 'checkpoint' && resolve(e.checkpointId)));

describe('one instance per job', () => {
  it('a second start fails at once, naming the holder of the lease', async () => {
    const name = fresh('lease');
    mkdirSync(join(name.dir, name.jobName), { recursive: true });
    // A live process (our parent) on this host holds the lease.
    writeFileSync(
      join(name.dir, name.jobName, LEASE_FILE),
      JSON.stringify({ pid: process.ppid, host: hostname(), startedAtMs: Date.now(), token: 'other' }),
    );
    const env = environment(name);
    env.fromSource(fromCollection([1, 2, 3])).sinkTo(collectSink([]));
    const error = await env.execute().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(JobLeaseHeldError);
    expect((error as Error).message).toContain(`pid ${process.ppid} on ${hostname()}`);
  });

  it('two environments of one job in one process: the second is refused while the first runs', async () => {
    const name = fresh('twice');
    const first = environment(name);
    first.fromSource(countingSource({ pollDelayMs: 5 })).sinkTo(collectSink([]));
    const running = untilState(first, 'running');
    const done = first.execute();
    await running;
    const second = environment(name);
    second.fromSource(countingSource({ pollDelayMs: 5 })).sinkTo(collectSink([]));
    await expect(second.execute()).rejects.toBeInstanceOf(JobLeaseHeldError);
    await first.stop();
    await done;
    expect(existsSync(join(name.dir, name.jobName, LEASE_FILE))).toBe(false);
  });

  it('a lease left by a dead process on this host is taken over; one of another host once unrenewed, or with takeover', async () => {
    const name = fresh('stale');
    const root = join(name.dir, name.jobName);
    mkdirSync(root, { recursive: true });
    writeFileSync(
      join(root, LEASE_FILE),
      JSON.stringify({ pid: 2 ** 22 + 17, host: hostname(), startedAtMs: 0, token: 'dead' }),
    );
    const lease = await JobLease.acquire(name.jobName, root);
    expect(lease.holder.pid).toBe(process.pid);
    await lease.release();
    writeFileSync(
      join(root, LEASE_FILE),
      JSON.stringify({ pid: 1, host: 'some-other-host', startedAtMs: 0, renewedAtMs: Date.now(), token: 'remote' }),
    );
    await expect(JobLease.acquire(name.jobName, root)).rejects.toBeInstanceOf(JobLeaseHeldError);
    // Not renewed for longer than staleAfterMs: its holder is gone.
    writeFileSync(
      join(root, LEASE_FILE),
      JSON.stringify({
        pid: 1,
        host: 'some-other-host',
        startedAtMs: 0,
        renewedAtMs: Date.now() - 120_000,
        token: 'remote',
      }),
    );
    await (await JobLease.acquire(name.jobName, root)).release();
    writeFileSync(
      join(root, LEASE_FILE),
      JSON.stringify({ pid: 1, host: 'some-other-host', startedAtMs: 0, renewedAtMs: Date.now(), token: 'remote' }),
    );
    const taken = await JobLease.acquire(name.jobName, root, { takeover: true });
    await taken.release();
  });
});

describe('graceful stop', () => {
  it('ends with a final checkpoint and reports it', async () => {
    const name = fresh('stop');
    const env = environment(name);
    const out: number[] = [];
    env.fromSource(countingSource({ pollDelayMs: 5 })).sinkTo(collectSink(out));
    const done = env.execute();
    await untilCheckpoint(env);
    const stopped = await env.stop({ savepoint: 'before-upgrade' });
    const result = await done;
    expect(result.state).toBe('stopped');
    expect(stopped.checkpointId).toBe(result.finalCheckpoint?.checkpointId);
    expect(stopped.savepointPath).toBe(join(name.dir, name.jobName, 'savepoints', 'before-upgrade'));
    expect(existsSync(join(stopped.savepointPath as string, '_metadata'))).toBe(true);
  });

  it('is honoured during the back-off between restarts (which it ends at once)', async () => {
    const name = fresh('backoff');
    const env = environment(name, { restart: { initialDelayMs: 60_000, maxDelayMs: 60_000 } });
    env.fromSource(countingSource({ pollDelayMs: 5, failFirst: 1 })).sinkTo(collectSink([]));
    const backingOff = untilState(env, 'backing-off');
    const started = Date.now();
    const done = env.execute();
    await backingOff;
    const stopped = await env.stop();
    const result = await done;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(result.state).toBe('stopped');
    expect(result.restarts).toBe(1);
    expect(stopped.checkpointId).toBeUndefined();
  });

  it('is honoured while restoring: the attempt stops as soon as it started', async () => {
    const name = fresh('restoring');
    const env = environment(name);
    env.fromSource(countingSource({ pollDelayMs: 5 })).sinkTo(collectSink([]));
    const restoring = untilState(env, 'restoring');
    const done = env.execute();
    await restoring;
    const stopped = await env.stop();
    expect((await done).state).toBe('stopped');
    expect(stopped.checkpointId).toBeGreaterThan(0);
  });

  it('past its deadline cancels the job and says so', async () => {
    const name = fresh('deadline');
    const env = environment(name);
    env.fromSource(countingSource({ pollDelayMs: 5 })).sinkTo(collectSink([]));
    const done = env.execute();
    await untilState(env, 'running');
    await expect(env.stop({ deadlineMs: 1 })).rejects.toBeInstanceOf(StopDeadlineExceededError);
    // execute() fails with it too (a missed deadline exits non-zero), the job ended cancelled.
    await expect(done).rejects.toBeInstanceOf(StopDeadlineExceededError);
    expect(env.status().state).toBe('cancelled');
  });

  it('cancel ends at once without a final checkpoint', async () => {
    const name = fresh('cancel');
    const env = environment(name);
    env.fromSource(countingSource({ pollDelayMs: 5 })).sinkTo(collectSink([]));
    const done = env.execute();
    await untilCheckpoint(env);
    await env.cancel();
    const result = await done;
    expect(result.state).toBe('cancelled');
    expect(result.finalCheckpoint).toBeUndefined();
  });
});

describe('an explicit restore target', () => {
  it('that does not exist fails the job instead of falling back to the latest checkpoint', async () => {
    const name = fresh('typo');
    const first = environment(name);
    first.fromSource(fromCollection([1, 2, 3])).sinkTo(collectSink([]));
    expect((await first.execute()).finalCheckpoint).toBeDefined();
    const env = environment(name, {
      restore: { savepoint: 'befor-upgrade' },
      restart: { maxAttempts: 3, initialDelayMs: 10 },
    });
    const out: number[] = [];
    env.fromSource(fromCollection([1, 2, 3])).sinkTo(collectSink(out));
    await expect(env.execute()).rejects.toBeInstanceOf(CheckpointNotFoundError);
    expect(out).toEqual([]);
  });
});
