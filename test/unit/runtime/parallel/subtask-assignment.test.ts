import { AssignerProtocol, type Cluster } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  ownsPartition,
  subtaskAssigner,
  subtaskGroupId,
} from '../../../../operators/sources/kafka/subtask-assignment.ts';
import {
  twoPhaseCommitSink,
  type SinkIdentity,
  type TwoPhaseCommitter,
} from '../../../../operators/sinks/two-phase-commit.ts';
import { countingOperatorContext } from '../../../support/operator-context.ts';

describe('static Kafka partition assignment per subtask', () => {
  const cluster = {
    findTopicPartitionMetadata: () => [0, 1, 2, 3, 4, 5, 6].map((partitionId) => ({ partitionId })),
  } as unknown as Cluster;

  it('gives subtask i of N exactly the partitions p % N == i, all to one member of its group', async () => {
    const assigner = subtaskAssigner(1, 3)({ cluster, groupId: 'g', logger: undefined as never });
    const members = [
      { memberId: 'b', memberMetadata: Buffer.alloc(0) },
      { memberId: 'a', memberMetadata: Buffer.alloc(0) },
    ];
    const result = await assigner.assign({ members, topics: ['t'] });
    const decoded = new Map(
      result.map((r) => [r.memberId, AssignerProtocol.MemberAssignment.decode(r.memberAssignment)?.assignment]),
    );
    expect(decoded.get('a')).toEqual({ t: [1, 4] });
    expect(decoded.get('b')).toEqual({});
    expect([0, 1, 2, 3, 4, 5, 6].filter((p) => ownsPartition(p, 1, 3))).toEqual([1, 4]);
    expect(subtaskGroupId('g', 1, 3)).toBe('g.subtask-1-of-3');
  });
});

describe('two-phase sink restored at another parallelism', () => {
  it('recovers the transactions of the old subtasks it takes over under their own identity', async () => {
    const recovered: { subtask: number; txns: readonly number[] }[] = [];
    const operator = twoPhaseCommitSink('test', recordingCommitter(recovered)).createOperator();
    const parts = [0, 2].map((subtaskIndex) => ({
      subtaskIndex,
      snapshot: { pending: [{ checkpointId: 7, txn: 70 + subtaskIndex }] },
    }));
    const info = { jobName: 'j', uid: 'sink', subtaskIndex: 0, parallelism: 2 };
    const merged = operator.mergeRescaled?.(parts, info);
    await operator.open?.({ ...countingOperatorContext('j', 'sink'), parallelism: 2 }, merged);
    // Old subtask 2 (gone at parallelism 2) first, under its identity; then this subtask's own.
    expect(recovered).toEqual([
      { subtask: 2, txns: [72] },
      { subtask: 0, txns: [70] },
    ]);
  });

  it('rolls back what retired subtasks left that no checkpoint recorded (a wider run died before its first checkpoint)', async () => {
    const recovered: { subtask: number; txns: readonly number[] }[] = [];
    const operator = twoPhaseCommitSink('test', recordingCommitter(recovered)).createOperator();
    // Restored at 2 from a checkpoint taken at 2; a run at 5 started since and died unrecorded.
    const context = {
      ...countingOperatorContext('j', 'sink'),
      subtaskIndex: 0,
      parallelism: 2,
      retiredSubtasks: [2, 4],
    };
    await operator.open?.(context, { pending: [{ checkpointId: 7, txn: 70 }] });
    expect(recovered).toEqual([
      { subtask: 2, txns: [] },
      { subtask: 4, txns: [] },
      { subtask: 0, txns: [70] },
    ]);
  });

  it('recovers a retired subtask the restored checkpoint recorded once, with what it recorded', async () => {
    const recovered: { subtask: number; txns: readonly number[] }[] = [];
    const operator = twoPhaseCommitSink('test', recordingCommitter(recovered)).createOperator();
    const parts = [0, 2].map((subtaskIndex) => ({
      subtaskIndex,
      snapshot: { pending: [{ checkpointId: 7, txn: 70 + subtaskIndex }] },
    }));
    const info = { jobName: 'j', uid: 'sink', subtaskIndex: 0, parallelism: 2 };
    const context = { ...countingOperatorContext('j', 'sink'), parallelism: 2, retiredSubtasks: [2, 4] };
    await operator.open?.(context, operator.mergeRescaled?.(parts, info));
    expect(recovered).toEqual([
      { subtask: 2, txns: [72] },
      { subtask: 4, txns: [] },
      { subtask: 0, txns: [70] },
    ]);
  });
});

function recordingCommitter(
  recovered: { subtask: number; txns: readonly number[] }[],
): (identity: SinkIdentity) => TwoPhaseCommitter<unknown, number> {
  return (identity) => ({
    beginTransaction: () => Promise.resolve(),
    write: () => Promise.resolve(),
    preCommit: (id) => Promise.resolve(id),
    commit: () => Promise.resolve(),
    recover: (txns) => {
      recovered.push({ subtask: identity.subtaskIndex, txns });
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  });
}
