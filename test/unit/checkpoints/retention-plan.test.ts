import { describe, expect, it } from 'vitest';
import type { CheckpointMetadata } from '../../../checkpoints/checkpoint-metadata.ts';
import { assertRetainCount, planRetention } from '../../../checkpoints/retention-plan.ts';
import type { CheckpointListing, StoredCheckpoint } from '../../../checkpoints/storage.ts';

function stored(checkpointId: number, kind: 'checkpoint' | 'savepoint' = 'checkpoint'): StoredCheckpoint {
  const metadata = {
    checkpointId,
    kind,
    sharedFiles: [`shared/op/subtask-0/chk-${checkpointId}-delta-a.bin`],
  } as unknown as CheckpointMetadata;
  return { metadata, location: `/root/job/chk-${checkpointId}`, fileRoot: '/root/job' };
}

function listing(checkpoints: number[], savepoints: number[] = [], invalid: number[] = []): CheckpointListing {
  return {
    checkpoints: checkpoints.map((id) => stored(id)),
    savepoints: savepoints.map((id) => stored(id, 'savepoint')),
    invalid: invalid.map((id) => ({ location: `/root/job/chk-${id}`, reason: 'no _metadata' })),
  };
}

describe('retention plan', () => {
  it('keeps the newest K, and those a checkpoint in flight builds on', () => {
    const plan = planRetention(listing([1, 2, 3, 4]), 1, { keepFrom: 3 });
    expect(plan.retained.map((s) => s.metadata.checkpointId)).toEqual([3, 4]);
    expect(plan.discarded.map((s) => s.metadata.checkpointId)).toEqual([1, 2]);
  });

  it('treats only incomplete folders older than the newest retained checkpoint as aborted', () => {
    expect(planRetention(listing([2, 4], [], [1, 3, 5]), 1).deadIds).toEqual([1, 3]);
  });

  it('protects files of checkpoints in flight: ids above every completed checkpoint and savepoint', () => {
    const plan = planRetention(listing([1], [3], [2]), 1);
    expect(plan.isInFlight('shared/op/subtask-0/chk-4-delta-b.bin')).toBe(true);
    // Checkpoint 2 was aborted (its files were uploaded, its metadata never written): below savepoint 3, not in flight.
    expect(plan.isInFlight('shared/op/subtask-0/chk-2-delta-b.bin')).toBe(false);
    expect(plan.isInFlight('shared/op/other-name.bin')).toBe(false);
  });

  it('keeps the files kept checkpoints and savepoints reference, where the caller locates them', () => {
    const plan = planRetention(listing([1, 2], [3]), 1);
    const keeps = plan.keepsFile((s, p) => (s.metadata.kind === 'savepoint' ? undefined : `${s.fileRoot}/${p}`));
    expect(keeps('/root/job/shared/op/subtask-0/chk-2-delta-a.bin')).toBe(true);
    expect(keeps('/root/job/shared/op/subtask-0/chk-1-delta-a.bin')).toBe(false);
    expect(keeps('/root/job/shared/op/subtask-0/chk-3-delta-a.bin')).toBe(false);
    expect(keeps('/root/job/shared/op/subtask-0/chk-4-delta-a.bin')).toBe(true);
  });

  it('refuses a count that would keep nothing before anything is listed', () => {
    for (const keep of [0, -1, 1.5, Number.NaN]) expect(() => assertRetainCount(keep)).toThrow(/integer >= 1/);
    expect(() => planRetention(listing([1]), 0)).toThrow(/integer >= 1/);
  });
});
