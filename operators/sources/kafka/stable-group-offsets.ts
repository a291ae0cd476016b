/**
 * Lag monitoring under the job's own consumer group at any parallelism. At parallelism > 1 each
 * subtask consumes in a group of its own (`<group>.subtask-i-of-N`, subtask-assignment.ts), whose
 * name changes with N: lag alerts on those go stale after a rescale. So every subtask also commits
 * the positions of its partitions, once their checkpoint completed, under the plain `<group>`, as
 * a "simple" offset commit (generation -1, no member: the group has no members, nobody joins it).
 * Together the subtasks cover every partition; the group's lag is the job's lag whatever N is.
 *
 * kafkajs has no public call for a commit outside a group membership (its admin `setOffsets`
 * joins the group with a consumer), so this sends the OffsetCommit request through kafkajs 2.2.4's
 * cluster, as the Kafka sink does for its transactions.
 */
import { Kafka } from 'kafkajs';
import { parseSplit } from './fetcher.ts';

interface GroupBroker {
  offsetCommit(request: {
    groupId: string;
    groupGenerationId: number;
    memberId: string;
    topics: { topic: string; partitions: { partition: number; offset: string }[] }[];
  }): Promise<{ responses: { topic: string; partitions: { partition: number; errorCode: number }[] }[] }>;
}

interface GroupCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  findGroupCoordinator(request: { groupId: string; coordinatorType?: number }): Promise<GroupBroker>;
}

type ClusterFactory = (options: {
  metadataMaxAge: number;
  allowAutoTopicCreation: boolean;
  maxInFlightRequests: number | null;
  instrumentationEmitter: null;
}) => GroupCluster;

export class StableGroupOffsets {
  private cluster: GroupCluster | undefined;

  constructor(
    private readonly kafka: Kafka,
    readonly groupId: string,
  ) {}

  /** Commits `positions` (split → next offset) under the job's group; throws on a broker error. */
  async commit(positions: ReadonlyMap<string, string>): Promise<void> {
    if (positions.size === 0) return;
    const byTopic = new Map<string, { partition: number; offset: string }[]>();
    for (const [split, offset] of positions) {
      const { topic, partition } = parseSplit(split);
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), { partition, offset }]);
    }
    const cluster = await this.connected();
    const coordinator = await cluster.findGroupCoordinator({ groupId: this.groupId });
    const { responses } = await coordinator.offsetCommit({
      groupId: this.groupId,
      groupGenerationId: -1,
      memberId: '',
      topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
    });
    const failed = responses.flatMap((r) =>
      r.partitions.filter((p) => p.errorCode !== 0).map((p) => `${r.topic}:${p.partition} (error ${p.errorCode})`),
    );
    if (failed.length > 0)
      throw new Error(`committing offsets under group ${this.groupId} failed for ${failed.join(', ')}`);
  }

  async close(): Promise<void> {
    const cluster = this.cluster;
    this.cluster = undefined;
    await cluster?.disconnect();
  }

  private async connected(): Promise<GroupCluster> {
    if (this.cluster !== undefined) return this.cluster;
    const symbol = Object.getOwnPropertySymbols(this.kafka).find(
      (s) => s.description === 'private:Kafka:createCluster',
    );
    const factory =
      symbol === undefined ? undefined : (this.kafka as unknown as Record<symbol, ClusterFactory | undefined>)[symbol];
    if (typeof factory !== 'function')
      throw new Error('kafkajs no longer has private:Kafka:createCluster; stable group offsets need kafkajs 2.2.4');
    const cluster = factory.call(this.kafka, {
      metadataMaxAge: 300_000,
      allowAutoTopicCreation: false,
      maxInFlightRequests: null,
      instrumentationEmitter: null,
    });
    await cluster.connect();
    this.cluster = cluster;
    return cluster;
  }
}
