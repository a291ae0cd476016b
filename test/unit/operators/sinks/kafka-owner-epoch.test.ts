/**
 * Group mode's Kafka sink after a newer owner claimed the partition (operators/sinks/owner-epoch.ts,
 * kafka/transactional-id.ts): what an older owner may still do with each checkpoint's transaction,
 * and transactional ids per owner epoch, so a woken-up older owner's InitProducerId can never abort
 * the newer owner's open transaction.
 */
import { describe, expect, it } from 'vitest';
import { transactionalId, transactionalIdPattern } from '../../../../operators/sinks/kafka/transactional-id.ts';
import { fateAfterSuccessor, firstCheckpointIdOfEpoch } from '../../../../operators/sinks/owner-epoch.ts';
import type { SinkIdentity } from '../../../../operators/sinks/two-phase-commit.ts';
import { checkpointIdOf } from '../../../../runtime/group/partition-claims.ts';

const epoch2 = firstCheckpointIdOfEpoch(2);

describe('fateAfterSuccessor', () => {
  it('commits a checkpoint the newer owner restored from, or an earlier one (its restore commits the same)', () => {
    const successor = { epoch: 3, restore: { checkpointId: epoch2 + 7 } };
    expect(fateAfterSuccessor(epoch2 + 7, successor)).toBe('commit');
    expect(fateAfterSuccessor(epoch2 + 6, successor)).toBe('commit');
  });

  it('aborts a checkpoint completed after the newer owner chose an earlier restore point (void: replayed)', () => {
    expect(fateAfterSuccessor(epoch2 + 8, { epoch: 3, restore: { checkpointId: epoch2 + 7 } })).toBe('abort');
    // Restored from the epoch before ours: everything this owner completed is void.
    expect(fateAfterSuccessor(epoch2 + 1, { epoch: 3, restore: { checkpointId: 5 } })).toBe('abort');
    expect(fateAfterSuccessor(epoch2 + 1, { epoch: 3, restore: { checkpointId: undefined } })).toBe('abort');
  });

  it('leaves the transaction alone while the newer claim has not written its restore point', () => {
    expect(fateAfterSuccessor(epoch2 + 1, { epoch: 3, restore: undefined })).toBe('leave');
  });
});

describe('checkpointIdOf', () => {
  it('reads the id off a restore location, local or s3', () => {
    expect(checkpointIdOf('/ckpt/job/partitions/t-0/epoch-000002/job.t-0/chk-8589934633')).toBe(8589934633);
    expect(checkpointIdOf('s3://b/p/job/partitions/t-0/epoch-000002/job.t-0/chk-12/')).toBe(12);
    expect(checkpointIdOf(null)).toBeUndefined();
    expect(checkpointIdOf(undefined)).toBeUndefined();
  });
});

describe('transactional ids per owner epoch', () => {
  const identity = { jobName: 'job.by-status.orders-1', sinkUid: 'repartition', subtaskIndex: 0 } as SinkIdentity;

  it('differ between epochs of one partition task and keep the old form outside group mode', () => {
    expect(transactionalId(identity, 1)).toBe('job.by-status.orders-1-repartition-0-1');
    expect(transactionalId(identity, 1, undefined, 3)).toBe('job.by-status.orders-1.e3-repartition-0-1');
    expect(transactionalId(identity, 1, undefined, 3)).not.toBe(transactionalId(identity, 1, undefined, 4));
  });

  it('are all recognised as this sink’s, with their epoch, and no other partition’s', () => {
    const pattern = transactionalIdPattern(identity);
    expect(pattern.exec('job.by-status.orders-1.e3-repartition-0-1')?.groups).toMatchObject({
      epoch: '3',
      subtask: '0',
      slot: '1',
    });
    expect(pattern.exec('job.by-status.orders-1-repartition-2-0')?.groups?.['epoch']).toBeUndefined();
    expect(pattern.exec('job.by-status.orders-10.e3-repartition-0-1')).toBeNull();
    expect(pattern.exec('job.by-status.orders-1.e3-other-0-1')).toBeNull();
  });
});
