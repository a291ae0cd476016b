/**
 * Static partition assignment for parallel sources: subtask i of N reads the partitions p with
 * p % N == i, always. kafkajs has no `assign()`, so each subtask joins a consumer group of its own
 * (`<group>.subtask-<i>-of-<N>`) whose assigner hands that member exactly its partitions. No
 * rebalance can ever move a partition to another subtask (which would read records twice); a
 * second member of the same group (the session of a killed process that has not expired yet)
 * gets nothing, so two incarnations never read the same partition at once.
 */
import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

export function ownsPartition(partition: number, subtaskIndex: number, parallelism: number): boolean {
  return partition % parallelism === subtaskIndex;
}

export function subtaskGroupId(groupId: string, subtaskIndex: number, parallelism: number): string {
  return `${groupId}.subtask-${subtaskIndex}-of-${parallelism}`;
}

export function subtaskAssigner(subtaskIndex: number, parallelism: number): PartitionAssigner {
  const name = `CdcflowSubtask${subtaskIndex}of${parallelism}`;
  return ({ cluster }) => ({
    name,
    version: 0,
    assign: ({ members, topics }) => {
      // One owner per group: the member sorted first gets every partition of this subtask.
      const owner = members.map((m) => m.memberId).sort()[0];
      const assignment: Record<string, number[]> = {};
      for (const topic of topics) {
        assignment[topic] = cluster
          .findTopicPartitionMetadata(topic)
          .map((m) => m.partitionId)
          .filter((p) => ownsPartition(p, subtaskIndex, parallelism))
          .sort((a, b) => a - b);
      }
      return Promise.resolve(
        members.map(({ memberId }) => ({
          memberId,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({
            version: 0,
            assignment: memberId === owner ? assignment : {},
            userData: Buffer.alloc(0),
          }),
        })),
      );
    },
    protocol: ({ topics }) => ({
      name,
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
    }),
  });
}
