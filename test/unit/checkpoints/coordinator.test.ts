import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointCoordinator } from '../../../checkpoints/coordinator.ts';
import { CheckpointAbortedError, CheckpointConfigError } from '../../../checkpoints/errors.ts';
import { LocalCheckpointStorage } from '../../../checkpoints/local-storage.ts';
import {
  exists,
  flush,
  HARNESS_JOB as JOB,
  HARNESS_TASKS as TASKS,
  useCoordinatorHarness,
} from '../../support/coordinator-harness.ts';
import { snapshot, waitFor } from './helpers.ts';

const { harness, dir } = useCoordinatorHarness();

describe('CheckpointCoordinator', () => {
  it('triggers periodically, persists on all acks, then notifies completion', async () => {
    const h = harness();
    h.coordinator.start();
    h.clock.advance(999);
    await flush();
    expect(h.barriers).toEqual([]);
    h.clock.advance(1);
    await h.waitBarrier(1);
    expect(h.barriers[0]).toEqual({ id: 1, kind: 'checkpoint' });
    await h.ackAll(1, ['shared/map/1.sst']);
    await h.waitStats(1);
    await waitFor(() => h.log.length === 1, 'notifyComplete');
    expect(h.log).toEqual(['complete:1:durable']);
    expect(h.stats[0]).toMatchObject({ checkpointId: 1, kind: 'checkpoint', status: 'completed', bytes: 10 });
    const stored = await h.storage.load(1);
    expect(stored.metadata.tasks['src#0']?.operator).toEqual({
      source: { positions: [{ split: 'orders-0', position: '10' }] },
    });
    expect(stored.metadata.sharedFiles).toEqual(['shared/map/1.sst']);

    await h.idle();
    h.clock.advance(1000);
    await h.waitBarrier(2);
    expect(h.barriers[1]).toEqual({ id: 2, kind: 'checkpoint' });
  }, 15_000);

  it('aborts on timeout, notifies abort, and ignores the late ack', async () => {
    const h = harness();
    await h.startCheckpoints(1);
    h.coordinator.acknowledge('src#0', 1, snapshot('src#0', 1));
    h.clock.advance(5000);
    await h.waitStats(1);
    expect(h.stats[0]).toMatchObject({ checkpointId: 1, status: 'aborted', durationMs: 5000 });
    expect(h.stats[0]?.failureReason).toMatch(/timed out after 5000ms waiting for acks from map#0/);
    await waitFor(() => h.log.length === 1, 'notifyAborted');
    expect(h.log[0]).toMatch(/^aborted:1:timed out/);
    h.coordinator.acknowledge('map#0', 1, snapshot('map#0', 1));
    expect(h.events).toContainEqual({
      type: 'ignored-message',
      message: 'ack',
      taskId: 'map#0',
      checkpointId: 1,
      reason: 'aborted',
    });
    expect(await exists(join(h.storage.fileRoot, 'chk-1', '_metadata'))).toBe(false);
  });

  it('aborts when a task declines', async () => {
    const h = harness();
    await h.startCheckpoints(1);
    h.coordinator.decline('map#0', 1, 'state backend closed');
    await h.waitStats(1);
    await waitFor(() => h.log.length === 1, 'notifyAborted');
    expect(h.log).toEqual(['aborted:1:declined by map#0: state backend closed']);
    expect(h.coordinator.status().consecutiveFailures).toBe(1);
  });

  it('calls onFailureThresholdExceeded after more than tolerableFailures failures in a row', async () => {
    const h = harness({ tolerableFailures: 2 });
    h.coordinator.start();
    const failNext = async (n: number) => {
      await h.idle();
      h.clock.advance(1000);
      await h.waitBarrier(n);
      h.coordinator.decline('src#0', n, 'boom');
      await h.waitStats(n);
    };
    await failNext(1);
    await failNext(2);
    // A success resets the count.
    await h.idle();
    h.clock.advance(1000);
    await h.waitBarrier(3);
    await h.ackAll(3);
    await h.waitStats(3);
    for (const n of [4, 5]) await failNext(n);
    expect(h.thresholds).toEqual([]);
    await failNext(6);
    await waitFor(() => h.thresholds.length === 1, 'threshold callback');
    expect(h.thresholds[0]).toMatch(
      /3 consecutive checkpoint failures \(tolerable: 2\); last: checkpoint 6 aborted: declined by src#0: boom/,
    );
  }, 15_000);

  it('takes a savepoint on demand while periodic checkpoints run', async () => {
    const h = harness();
    await h.startCheckpoints(1);
    const savepoint = h.coordinator.triggerSavepoint('before-upgrade');
    await h.ackAll(1, ['shared/map/1.sst']);
    await h.waitBarrier(2); // queued savepoint goes right after checkpoint 1
    expect(h.barriers[1]).toEqual({ id: 2, kind: 'savepoint' });
    await h.ackAll(2, ['shared/map/1.sst', 'shared/map/2.sst']);
    const metadata = await savepoint;
    expect(metadata).toMatchObject({ checkpointId: 2, kind: 'savepoint', savepointName: 'before-upgrade' });
    expect(await exists(join(h.storage.fileRoot, 'savepoints/before-upgrade/shared/map/2.sst'))).toBe(true);
    expect(h.log).toEqual(['complete:1:durable', 'complete:2:savepoint']);

    await h.idle();
    h.clock.advance(1000);
    await h.waitBarrier(3);
    expect(h.barriers[2]).toEqual({ id: 3, kind: 'checkpoint' });
  });

  it('keeps ids increasing across a restart and restores from the newest or a named savepoint', async () => {
    const first = harness({ retain: 1 });
    const sp = first.coordinator.triggerSavepoint('v1');
    await first.waitBarrier(1);
    await first.ackAll(1, ['shared/map/1.sst']);
    await sp;
    first.coordinator.start();
    for (const id of [2, 3]) {
      await first.idle();
      first.clock.advance(1000);
      await first.waitBarrier(id);
      await first.ackAll(id, [`shared/map/${id}.sst`]);
      await first.waitStats(id);
    }
    await first.idle();
    first.clock.advance(1000);
    await first.waitBarrier(4); // in flight when the process "dies"
    await first.coordinator.stop();

    const second = harness();
    const latest = await second.coordinator.restoreFrom('latest');
    expect(latest.restored?.metadata.checkpointId).toBe(3);

    const third = harness();
    const fromSavepoint = await third.coordinator.restoreFrom({ savepoint: 'v1' });
    expect(fromSavepoint.restored?.metadata).toMatchObject({ checkpointId: 1, kind: 'savepoint' });
    expect(fromSavepoint.restored?.metadata.tasks['map#0']?.keyed).toMatchObject({
      files: [{ path: 'shared/map/1.sst' }],
    });
    // Retention (retain: 1) deleted shared/map/1.sst, but the savepoint carries its own copy.
    expect(await exists(join(second.storage.fileRoot, 'shared/map/1.sst'))).toBe(false);
    expect(await exists(join(fromSavepoint.restored?.fileRoot ?? '', 'shared/map/1.sst'))).toBe(true);
    await third.startCheckpoints(1);
    expect(third.barriers[0]?.id).toBe(fromSavepoint.nextCheckpointId);
    // Checkpoint 4 never completed, but its id was reserved before its barrier went out.
    expect(latest.nextCheckpointId).toBe(5);
    expect(fromSavepoint.nextCheckpointId).toBe(5);
  }, 15_000);

  it('aborts when persisting fails and never announces completion', async () => {
    const h = harness();
    const failing = Object.create(h.storage) as LocalCheckpointStorage;
    failing.writeCheckpoint = () => Promise.reject(new Error('disk full'));
    const c = harness({ storage: failing });
    await c.startCheckpoints(1);
    await c.ackAll(1);
    await c.waitStats(1);
    expect(c.stats[0]?.failureReason).toBe('persisting metadata failed: disk full');
    await waitFor(() => c.log.length === 1, 'notifyAborted');
    expect(c.log[0]).toMatch(/^aborted:1:/);
  });

  it('handles acks that arrive before barrier injection returns', async () => {
    const h = harness({
      triggerBarrier: async (id) => {
        h.coordinator.acknowledge('src#0', id, snapshot('src#0', id));
        h.coordinator.acknowledge('map#0', id, snapshot('map#0', id));
        await Promise.resolve();
      },
    });
    await expect(h.coordinator.triggerSavepoint()).resolves.toMatchObject({
      checkpointId: 1,
      savepointName: 'savepoint-1',
    });
  });

  it('aborts when barrier injection fails or a snapshot is invalid, and rejects the savepoint', async () => {
    const h = harness({ triggerBarrier: () => Promise.reject(new Error('source closed')) });
    await expect(h.coordinator.triggerSavepoint('x')).rejects.toThrow(/barrier injection failed: source closed/);
    const g = harness();
    const pending = g.coordinator.triggerSavepoint('y');
    await g.waitBarrier(1);
    const id = g.barriers[0]?.id ?? 0;
    expect(id).toBe(2); // id 1 was used (reserved) by the failed attempt of the other coordinator
    g.coordinator.acknowledge('map#0', id, { ...snapshot('map#0', id), bytes: -1 });
    await expect(pending).rejects.toBeInstanceOf(CheckpointAbortedError);
  });

  it('reports unknown checkpoints, unknown tasks and duplicate acks without failing', async () => {
    const h = harness();
    h.coordinator.acknowledge('map#0', 99, snapshot('map#0', 99));
    const pending = h.coordinator.triggerSavepoint();
    await h.waitBarrier(1);
    h.coordinator.acknowledge('sink#0', 1, snapshot('sink#0', 1));
    h.coordinator.acknowledge('map#0', 1, snapshot('map#0', 1));
    h.coordinator.acknowledge('map#0', 1, snapshot('map#0', 1));
    h.coordinator.acknowledge('src#0', 1, snapshot('src#0', 1));
    await pending;
    const reasons = h.events.flatMap((e) =>
      e.type === 'ignored-message' ? [`${e.taskId}@${e.checkpointId}:${e.reason}`] : [],
    );
    expect(reasons).toEqual(['map#0@99:unknown-checkpoint', 'sink#0@1:unknown-task', 'map#0@1:duplicate']);
  });

  it('stop() aborts a checkpoint that is still collecting acks', async () => {
    const h = harness();
    await h.startCheckpoints(1);
    await h.coordinator.stop();
    expect(h.log).toEqual(['aborted:1:coordinator stopped']);
    expect(h.clock.pendingTimers).toBe(0);
  });

  it('waits minPauseMs after a checkpoint ends before the next periodic one', async () => {
    const h = harness({ minPauseMs: 3000 });
    await h.startCheckpoints(1);
    h.clock.advance(500);
    await h.ackAll(1);
    await h.idle();
    h.clock.advance(2999); // the interval alone would have fired at 2000; the pause runs to 4500
    await flush();
    expect(h.barriers).toHaveLength(1);
    h.clock.advance(1);
    await h.waitBarrier(2);
  });

  it('rejects a savepoint name that is taken or unsafe before any barrier goes out', async () => {
    const h = harness();
    const first = h.coordinator.triggerSavepoint('v1');
    await h.waitBarrier(1);
    await h.ackAll(1);
    await first;
    await expect(h.coordinator.triggerSavepoint('v1')).rejects.toThrow(/already exists/);
    await expect(h.coordinator.triggerSavepoint('../escape')).rejects.toBeInstanceOf(CheckpointConfigError);
    expect(h.barriers).toHaveLength(1);
  });

  it('validates options and fills defaults', () => {
    const storage = new LocalCheckpointStorage({ directory: dir(), jobName: JOB });
    const base = {
      jobName: JOB,
      storage,
      tasks: TASKS,
      triggerBarrier: () => undefined,
      notifyComplete: () => undefined,
    };
    const ok = { ...base, notifyAborted: () => undefined, onFailureThresholdExceeded: () => undefined };
    expect(() => new CheckpointCoordinator({ ...ok, intervalMs: 0 })).toThrow(CheckpointConfigError);
    expect(() => new CheckpointCoordinator({ ...ok, tasks: [] })).toThrow(/at least one task/);
    expect(() => new CheckpointCoordinator({ ...ok, tasks: ['map'] })).toThrow(/<operatorUid>#<subtaskIndex>/);
    expect(() => new CheckpointCoordinator({ ...ok, jobName: 'other' })).toThrow(/differs from the storage/);
    expect(() => new CheckpointCoordinator(ok)).not.toThrow();
  });
});
