/**
 * `firstCheckpointId`: group mode gives each owner epoch of a partition its own id range, so two
 * owners restored from the same checkpoint never name a checkpoint (hence a sink transaction)
 * alike (runtime/group/group-job.ts, operators/sinks/owner-epoch.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointCoordinator } from '../../../checkpoints/coordinator.ts';
import { CheckpointConfigError } from '../../../checkpoints/errors.ts';
import { LocalCheckpointStorage } from '../../../checkpoints/local-storage.ts';
import { epochOfCheckpointId, firstCheckpointIdOfEpoch } from '../../../operators/sinks/owner-epoch.ts';
import { makeTempDir } from './helpers.ts';

const JOB = 'orders.cdc-orders-3';
let dir: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ dir, cleanup } = await makeTempDir());
});
afterEach(() => cleanup());

function coordinator(firstCheckpointId?: number): CheckpointCoordinator {
  return new CheckpointCoordinator({
    jobName: JOB,
    storage: new LocalCheckpointStorage({ directory: dir, jobName: JOB }),
    tasks: ['src#0'],
    triggerBarrier: () => undefined,
    notifyComplete: () => undefined,
    notifyAborted: () => undefined,
    onFailureThresholdExceeded: () => undefined,
    ...(firstCheckpointId === undefined ? {} : { firstCheckpointId }),
  });
}

describe('first checkpoint id', () => {
  it('starts at 1 by default and at the floor when one is given', async () => {
    expect((await coordinator().restoreFrom('latest')).nextCheckpointId).toBe(1);
    expect((await coordinator(firstCheckpointIdOfEpoch(3)).restoreFrom('latest')).nextCheckpointId).toBe(3 * 2 ** 32);
  });

  it('each epoch has its own range and an id tells its epoch', () => {
    expect(epochOfCheckpointId(firstCheckpointIdOfEpoch(4))).toBe(4);
    expect(epochOfCheckpointId(firstCheckpointIdOfEpoch(5) - 1)).toBe(4);
    expect(epochOfCheckpointId(17)).toBe(0);
  });

  it('refuses a floor below 1', () => {
    expect(() => coordinator(0)).toThrow(CheckpointConfigError);
  });
});
