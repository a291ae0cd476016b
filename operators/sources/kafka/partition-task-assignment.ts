/**
 * Group mode (runtime/group/): a partition task reads exactly one partition of one topic. kafkajs
 * has no `assign()`, so the task's source joins a consumer group of its own,
 * `<group>.task-<topic>-<partition>`, whose assigner gives that partition to the member with the
 * highest owner epoch (carried in its member metadata) and nothing to the others. A paused older
 * owner still in the group therefore never takes the partition back from the new one; positions
 * come from the task's checkpoints, never from this group's offsets.
 */
import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

export interface PartitionTaskRef {
  readonly partition: number;
  /** The claim this reader belongs to (runtime/group/partition-claims.ts). */
  readonly epoch: number;
}

export function partitionTaskGroupId(groupId: string, topic: string, partition: number): string {
  return `${groupId}.task-${topic}-${partition}`;
}

function epochOf(metadata: Buffer): number {
  try {
    const { userData } = AssignerProtocol.MemberMetadata.decode(metadata) ?? { userData: Buffer.alloc(0) };
    return userData.length >= 8 ? Number(userData.readBigInt64BE(0)) : -1;
  } catch {
    return -1;
  }
}

export function partitionTaskAssigner(task: PartitionTaskRef): PartitionAssigner {
  const name = 'CdcflowPartitionTask';
  const userData = Buffer.alloc(8);
  userData.writeBigInt64BE(BigInt(task.epoch));
  return () => ({
    name,
    version: 0,
    assign: ({ members, topics }) => {
      const ranked = members
        .map((m) => ({ id: m.memberId, epoch: epochOf(m.memberMetadata) }))
        .sort((a, b) => b.epoch - a.epoch || a.id.localeCompare(b.id));
      const owner = ranked[0]?.id;
      const assignment: Record<string, number[]> = {};
      for (const topic of topics) assignment[topic] = [task.partition];
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
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData }),
    }),
  });
}
