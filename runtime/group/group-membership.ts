/**
 * Membership in the job's consumer group, used only to learn which source partitions this process
 * owns: a kafkajs consumer that joins `<groupId>`, pauses every partition it is given (the
 * partition tasks read through their own consumers, partition-task-assignment.ts) and reports each
 * new assignment. It commits nothing: positions live in each task's checkpoints.
 *
 * kafkajs 2.2.4 rebalances eagerly (every member gives up everything and rejoins; no cooperative
 * protocol) and has no static membership (its JoinGroup request knows `groupInstanceId`, its
 * consumer never sends it), so a restarted process is a new member. See docs/group-mode.md.
 */
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { kafkaClientConfig, type KafkaConnection } from '../../operators/kafka-connection.ts';
import { kafkajsLogCreator, rootLogger } from '../../operators/logger.ts';

export interface OwnedPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface GroupMembershipOptions {
  readonly connection: KafkaConnection;
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly clientId: string;
  readonly sessionTimeoutMs: number;
  /** How often topic metadata is refreshed (new partitions). @default 300000 */
  readonly metadataMaxAgeMs?: number;
  /** Every assignment, after each (re)join. */
  readonly onAssignment: (owned: readonly OwnedPartition[]) => void;
  /** kafkajs gave up (not restarting): the process no longer takes part in the group. */
  readonly onFatal: (error: unknown) => void;
}

export class GroupMembership {
  private readonly consumer: Consumer;
  private stopped = false;

  constructor(private readonly o: GroupMembershipOptions) {
    const kafka = new Kafka(
      kafkaClientConfig(o.connection, {
        clientId: o.clientId,
        logLevel: logLevel.WARN,
        logCreator: kafkajsLogCreator(rootLogger().child({ client: o.clientId })),
      }),
    );
    this.consumer = kafka.consumer({
      groupId: o.groupId,
      sessionTimeout: o.sessionTimeoutMs,
      // Kafka's rule of thumb (a third of the session), at most 3 s.
      heartbeatInterval: Math.min(3000, Math.floor(o.sessionTimeoutMs / 3)),
      rebalanceTimeout: o.sessionTimeoutMs,
      ...(o.metadataMaxAgeMs === undefined ? {} : { metadataMaxAge: o.metadataMaxAgeMs }),
      maxWaitTimeInMs: 500,
      maxBytesPerPartition: 1,
      retry: { retries: 5, restartOnFailure: () => Promise.resolve(!this.stopped) },
    });
  }

  async start(): Promise<void> {
    const { consumer } = this;
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart && !this.stopped) this.o.onFatal(payload.error);
    });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      const owned = Object.entries(payload.memberAssignment).flatMap(([topic, partitions]) =>
        partitions.map((partition) => ({ topic, partition })),
      );
      // Membership only: nothing is fetched through this consumer.
      consumer.pause(this.o.topics.map((topic) => ({ topic })));
      this.o.onAssignment(owned);
    });
    await consumer.connect();
    for (const topic of this.o.topics) await consumer.subscribe({ topic, fromBeginning: false });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: () => Promise.resolve() });
  }

  /** Leaves the group (the broker rebalances the others at once instead of after the session timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.consumer.disconnect().catch(() => undefined);
  }
}
