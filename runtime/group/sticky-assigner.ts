/**
 * The group's partition assigner (kafkajs `partitionAssigners`): cooperative-sticky's assignment
 * (sticky-assignment.ts) on kafkajs's eager protocol. Each member's subscription carries what it
 * owns and the generation it got it in (user data, JSON); the leader keeps as much of that in
 * place as balance allows. kafkajs still revokes everything from every member on each rebalance,
 * but group mode keeps a task running when its partition comes straight back
 * (group-job.ts `apply`), so only the partitions that really move change hands.
 */
import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';
import { stickyAssignment, type StickyMember, type TopicPartition } from './sticky-assignment.ts';

/** The protocol name in JoinGroup; not Kafka's `cooperative-sticky`, whose wire format differs. */
export const STICKY_ASSIGNER_NAME = 'CdcflowSticky';

/** What this member owns now, for its next subscription. */
export interface OwnedState {
  owned(): readonly TopicPartition[];
  /** The generation the current assignment came with; -1 before the first. */
  generation(): number;
}

interface UserData {
  readonly v: 1;
  readonly generation: number;
  /** topic → partitions */
  readonly owned: Record<string, number[]>;
}

export function encodeOwned(owned: readonly TopicPartition[], generation: number): Buffer {
  const byTopic: Record<string, number[]> = {};
  for (const { topic, partition } of owned) (byTopic[topic] ??= []).push(partition);
  const data: UserData = { v: 1, generation, owned: byTopic };
  return Buffer.from(JSON.stringify(data));
}

/** A member's metadata as the leader sees it; garbage (another client, a newer format) owns nothing. */
export function decodeMember(
  memberId: string,
  groupInstanceId: string | null | undefined,
  metadata: Buffer,
): StickyMember {
  const decoded = AssignerProtocol.MemberMetadata.decode(metadata);
  let owned: TopicPartition[] = [];
  let generation = -1;
  try {
    const data = JSON.parse(decoded?.userData?.toString() ?? '') as Partial<UserData>;
    if (data.v === 1 && typeof data.owned === 'object' && data.owned !== null) {
      owned = Object.entries(data.owned).flatMap(([topic, ps]) =>
        Array.isArray(ps) ? ps.filter(Number.isInteger).map((partition) => ({ topic, partition })) : [],
      );
      generation = typeof data.generation === 'number' ? data.generation : -1;
    }
  } catch {
    // Not ours: the member is treated as owning nothing.
  }
  return {
    memberId,
    ...(groupInstanceId ? { groupInstanceId } : {}),
    topics: decoded?.topics ?? [],
    owned,
    generation,
  };
}

export function stickyAssigner(state: OwnedState): PartitionAssigner {
  return ({ cluster }) => ({
    name: STICKY_ASSIGNER_NAME,
    version: 1,
    assign: ({ members, topics }) => {
      const partitionsByTopic = new Map(
        topics.map((topic) => [topic, cluster.findTopicPartitionMetadata(topic).map((m) => m.partitionId)]),
      );
      const decoded = members.map((m) =>
        decodeMember(m.memberId, (m as { groupInstanceId?: string | null }).groupInstanceId, m.memberMetadata),
      );
      const assignment = stickyAssignment(decoded, partitionsByTopic);
      return Promise.resolve(
        decoded.map(({ memberId }) => {
          const byTopic: Record<string, number[]> = {};
          for (const { topic, partition } of assignment.get(memberId) ?? []) (byTopic[topic] ??= []).push(partition);
          return {
            memberId,
            memberAssignment: AssignerProtocol.MemberAssignment.encode({
              version: 1,
              assignment: byTopic,
              userData: Buffer.alloc(0),
            }),
          };
        }),
      );
    },
    protocol: ({ topics }) => ({
      name: STICKY_ASSIGNER_NAME,
      metadata: AssignerProtocol.MemberMetadata.encode({
        version: 1,
        topics,
        userData: encodeOwned(state.owned(), state.generation()),
      }),
    }),
  });
}
