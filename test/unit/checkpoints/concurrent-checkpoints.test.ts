import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalCheckpointStorage } from '../../../checkpoints/local-storage.ts';
import { exists, flush, HARNESS_JOB as JOB, useCoordinatorHarness } from '../../support/coordinator-harness.ts';
import { metadataFor, snapshot, waitFor, writeStateFile } from './helpers.ts';

const { harness, dir } = useCoordinatorHarness({ maxConcurrentCheckpoints: 2 });

describe('CheckpointCoordinator with two checkpoints in flight', () => {
  it('triggers the next checkpoint on the interval while the previous one still waits for acks', async () => {
    const h = harness();
    await h.startCheckpoints(2);
    expect(h.barrierIds()).toEqual([1, 2]);
    expect(h.coordinator.status().inFlightCount).toBe(2);
    // A third waits: at most two in flight.
    h.clock.advance(1000);
    await flush();
    expect(h.barrierIds()).toEqual([1, 2]);
  });

  it('completes and notifies in checkpoint order when the second is acknowledged first', async () => {
    const h = harness();
    await h.startCheckpoints(2);
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
    await h.startCheckpoints(2);
    await h.ack('src#0', 2);
    await h.ack('map#0', 2);
    await flush();
    h.coordinator.decline('map#0', 1, 'snapshot write failed');
    await waitFor(() => h.log.length === 2, 'both notified');
    expect(h.log).toEqual(['aborted:1:declined by map#0: snapshot write failed', 'complete:2:durable']);
    expect(h.coordinator.status().consecutiveFailures).toBe(0);
  });

  it('notifies the abort of the second only after the first completed', async () => {
    const h = harness();
    await h.startCheckpoints(2);
    h.coordinator.decline('src#0', 2, 'boom');
    await flush();
    expect(h.log).toEqual([]);
    await h.ack('src#0', 1);
    await h.ack('map#0', 1);
    await waitFor(() => h.log.length === 2, 'both notified');
    expect(h.log).toEqual(['complete:1:durable', 'aborted:2:declined by src#0: boom']);
  });

  it('retention beside a checkpoint in flight keeps the files it is writing', async () => {
    const h = harness({ retain: 1 });
    await h.startCheckpoints(2);
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
    await h.startCheckpoints(1);
    // Unnamed: queued synchronously (a name is first checked against storage, which races the clock below).
    const savepoint = h.coordinator.triggerSavepoint();
    await flush();
    // The savepoint is queued: no periodic checkpoint is triggered meanwhile, nor the savepoint itself.
    h.clock.advance(3000);
    await flush();
    expect(h.barrierIds()).toEqual([1]);
    await h.ack('src#0', 1);
    await h.ack('map#0', 1);
    await h.waitBarrier(2);
    h.clock.advance(3000);
    await flush();
    expect(h.barrierIds()).toEqual([1, 2]);
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
    await h.startCheckpoints(1);
    h.clock.advance(3000);
    await flush();
    expect(h.barrierIds()).toEqual([1]);
  });
});

describe('LocalCheckpointStorage.retain beside checkpoints in flight', () => {
  it('keeps checkpoints from keepFrom on and files named after checkpoints newer than the newest completed', async () => {
    const storage = new LocalCheckpointStorage({ directory: dir(), jobName: JOB });
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
