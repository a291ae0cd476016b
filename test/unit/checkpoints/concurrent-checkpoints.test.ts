import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointCoordinator } from '../../../checkpoints/coordinator.ts';
import type { CheckpointCoordinatorOptions, CheckpointEvent } from '../../../checkpoints/coordinator-options.ts';
import { LocalCheckpointStorage } from '../../../checkpoints/local-storage.ts';
import { FakeClock, makeTempDir, metadataFor, snapshot, waitFor, writeStateFile } from './helpers.ts';

const JOB = 'orders';
const TASKS = ['src#0', 'map#0'];
let dir: string;
let cleanup: () => Promise<void>;
const coordinators: CheckpointCoordinator[] = [];

beforeEach(async () => {
  ({ dir, cleanup } = await makeTempDir());
});
afterEach(async () => {
  for (const c of coordinators.splice(0)) await c.stop();
  await cleanup();
});

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

function harness(overrides: Partial<CheckpointCoordinatorOptions> = {}) {
  const clock = new FakeClock();
  const storage = new LocalCheckpointStorage({ directory: dir, jobName: JOB });
  const log: string[] = [];
  const barriers: number[] = [];
  const events: CheckpointEvent[] = [];
  const coordinator = new CheckpointCoordinator({
    jobName: JOB,
    storage,
    clock,
    tasks: TASKS,
    intervalMs: 1000,
    timeoutMs: 5000,
    maxConcurrentCheckpoints: 2,
    triggerBarrier: (id) => {
      barriers.push(id);
    },
    notifyComplete: async (id) => {
      // Every older checkpoint must be settled by now: a sink commits everything up to `id`.
      const durable = await exists(join(storage.fileRoot, `chk-${id}`, '_metadata'));
      log.push(`complete:${id}:${durable ? 'durable' : 'missing'}`);
    },
    notifyAborted: (id) => {
      log.push(`aborted:${id}`);
    },
    onFailureThresholdExceeded: () => undefined,
    onEvent: (e) => events.push(e),
    ...overrides,
  });
  coordinators.push(coordinator);
  const waitBarrier = (n: number) => waitFor(() => barriers.length >= n, `barrier #${n}`);
  const ack = async (task: string, id: number, files: string[] = []) => {
    for (const f of files) await writeStateFile(storage.fileRoot, f);
    coordinator.acknowledge(
      task,
      id,
      task === 'src#0'
        ? snapshot(task, id, [], { source: { positions: [{ split: 'orders-0', position: String(id * 10) }] } })
        : snapshot(task, id, files),
    );
  };
  return { clock, storage, coordinator, log, barriers, events, waitBarrier, ack };
}

describe('CheckpointCoordinator with two checkpoints in flight', () => {
  it('triggers the next checkpoint on the interval while the previous one still waits for acks', async () => {
    const h = harness();
    h.coordinator.start();
    h.clock.advance(1000);
    await h.waitBarrier(1);
    h.clock.advance(1000);
    await h.waitBarrier(2);
    expect(h.barriers).toEqual([1, 2]);
    expect(h.coordinator.status().inFlightCount).toBe(2);
    // A third waits: at most two in flight.
    h.clock.advance(1000);
    await flush();
    expect(h.barriers).toEqual([1, 2]);
  });

  it('completes and notifies in checkpoint order when the second is acknowledged first', async () => {
    const h = harness();
    h.coordinator.start();
    h.clock.advance(1000);
    await h.waitBarrier(1);
    h.clock.advance(1000);
    await h.waitBarrier(2);
    await h.ack('src#0', 2);
    await h.ack('map#0', 2, ['shared/map/chk-2-delta-a.bin']);
    await flush();
    // Checkpoint 2 has every ack but is not complete while 1 could still complete after it.
    expect(await exists(join(h.storage.fileRoot, 'chk-2', '_metadata'))).toBe(false);
    expect(h.log).toEqual([]);
    await h.ack('src#0', 1);
    await h.ack('map#0', 1, ['shared/map/chk-1-full-a.bin']);
    await waitFor(() => h.log.length === 2, 'both notified');
    expect(h.log).toEqual(['complete:1:durable', 'complete:2:durable']);
    expect((await h.storage.latestCompleted())?.metadata.checkpointId).toBe(2);
  });

  it('completes the second after the first failed while it was in flight, in order', async () => {
    const h = harness();
    h.coordinator.start();
    h.clock.advance(1000);
    await h.waitBarrier(1);
    h.clock.advance(1000);
    await h.waitBarrier(2);
    await h.ack('src#0', 2);
    await h.ack('map#0', 2);
    await flush();
    h.coordinator.decline('map#0', 1, 'snapshot write failed');
    await waitFor(() => h.log.length === 2, 'both notified');
    expect(h.log).toEqual(['aborted:1', 'complete:2:durable']);
    expect(h.coordinator.status().consecutiveFailures).toBe(0);
  });

  it('notifies the abort of the second only after the first completed', async () => {
    const h = harness();
    h.coordinator.start();
    h.clock.advance(1000);
    await h.waitBarrier(1);
    h.clock.advance(1000);
    await h.waitBarrier(2);
    h.coordinator.decline('src#0', 2, 'boom');
    await flush();
    expect(h.log).toEqual([]);
    await h.ack('src#0', 1);
    await h.ack('map#0', 1);
    await waitFor(() => h.log.length === 2, 'both notified');
    expect(h.log).toEqual(['complete:1:durable', 'aborted:2']);
  });

  it('retention beside a checkpoint in flight keeps the files it is writing', async () => {
    const h = harness({ retain: 1 });
    h.coordinator.start();
    h.clock.advance(1000);
    await h.waitBarrier(1);
    h.clock.advance(1000);
    await h.waitBarrier(2);
    // Checkpoint 2's task has written its file (and a temp of another) before checkpoint 1 completes.
    await writeStateFile(h.storage.fileRoot, 'shared/map/chk-2-delta-b.bin');
    await writeStateFile(h.storage.fileRoot, 'shared/map/chk-2-delta-c.bin.tmp-1234');
    await writeStateFile(h.storage.fileRoot, 'shared/map/chk-0-delta-old.bin');
    await h.ack('src#0', 1);
    await h.ack('map#0', 1, ['shared/map/chk-1-full-a.bin']);
    await waitFor(() => h.events.some((e) => e.type === 'retention'), 'retention');
    const files = await readdir(join(h.storage.fileRoot, 'shared', 'map'));
    expect(files.sort()).toEqual(['chk-1-full-a.bin', 'chk-2-delta-b.bin', 'chk-2-delta-c.bin.tmp-1234']);
  });

  it('a savepoint waits until no checkpoint is in flight and runs alone', async () => {
    const h = harness();
    h.coordinator.start();
    h.clock.advance(1000);
    await h.waitBarrier(1);
    // Unnamed: queued synchronously (a name is first checked against storage, which races the clock below).
    const savepoint = h.coordinator.triggerSavepoint();
    await flush();
    // The savepoint is queued: no periodic checkpoint is triggered meanwhile, nor the savepoint itself.
    h.clock.advance(3000);
    await flush();
    expect(h.barriers).toEqual([1]);
    await h.ack('src#0', 1);
    await h.ack('map#0', 1);
    await h.waitBarrier(2);
    h.clock.advance(3000);
    await flush();
    expect(h.barriers).toEqual([1, 2]);
    await h.ack('src#0', 2);
    await h.ack('map#0', 2);
    expect((await savepoint).kind).toBe('savepoint');
    // Periodic checkpoints resume afterwards.
    await waitFor(() => !h.coordinator.status().busy, 'savepoint settled');
    h.clock.advance(1000);
    await h.waitBarrier(3);
  }, 15_000);

  it('runs one checkpoint at a time with maxConcurrentCheckpoints 1', async () => {
    const h = harness({ maxConcurrentCheckpoints: 1 });
    h.coordinator.start();
    h.clock.advance(1000);
    await h.waitBarrier(1);
    h.clock.advance(3000);
    await flush();
    expect(h.barriers).toEqual([1]);
  });
});

describe('LocalCheckpointStorage.retain beside checkpoints in flight', () => {
  it('keeps checkpoints from keepFrom on and files named after checkpoints newer than the newest completed', async () => {
    const storage = new LocalCheckpointStorage({ directory: dir, jobName: JOB });
    for (const id of [1, 2, 3]) {
      await storage.reserve(id);
      await writeStateFile(storage.fileRoot, `shared/map/chk-${id}-delta-x.bin`);
      await storage.writeCheckpoint(
        metadataFor(JOB, id, { 'map#0': snapshot('map#0', id, [`shared/map/chk-${id}-delta-x.bin`]) }),
      );
    }
    await writeStateFile(storage.fileRoot, 'shared/map/chk-4-delta-y.bin');
    await writeStateFile(storage.fileRoot, 'shared/map/chk-2-delta-orphan.bin');
    const result = await storage.retain(1, { keepFrom: 2 });
    expect(result.retainedCheckpointIds).toEqual([2, 3]);
    expect(result.deletedCheckpointIds).toEqual([1]);
    const files = (await readdir(join(storage.fileRoot, 'shared', 'map'))).sort();
    expect(files).toEqual(['chk-2-delta-x.bin', 'chk-3-delta-x.bin', 'chk-4-delta-y.bin']);
  });
});
