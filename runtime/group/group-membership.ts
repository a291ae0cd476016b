/**
 * Membership in the job's consumer group, used only to learn which source partitions this process
 * owns: a kafkajs consumer that joins `<groupId>`, pauses every partition it is given (the
 * partition tasks read through their own consumers, partition-task-assignment.ts) and reports each
 * new assignment. It commits nothing: positions live in each task's checkpoints.
 *
 * kafkajs 2.2.4 rebalances eagerly (every member gives up everything and rejoins; no cooperative
 * protocol). The sticky assigner (sticky-assigner.ts) gives every member back what it owned as far
 * as balance allows, and the group job keeps those tasks running, so only moved partitions change
 * hands. With `groupInstanceId` the consumer is a static member (KIP-345, through cdcflow's
 * kafkajs patch): a restart within the session timeout gets the same partitions back without a
 * rebalance, and a second process with the same id fences this one (`GroupInstanceFencedError`).
 * See docs/group-mode.md.
 */
import {
  Kafka,
  logLevel,
  PartitionAssigners,
  type Consumer,
  type ConsumerConfig,
  type PartitionAssigner,
} from 'kafkajs';
import { kafkaClientConfig, type KafkaConnection } from '../../operators/kafka-connection.ts';
import { kafkajsLogCreator, rootLogger } from '../../operators/logger.ts';
import { CdcflowError } from '../../state/errors.ts';
import { assertStaticMembershipSupported } from './static-membership-check.ts';
import { stickyAssigner } from './sticky-assigner.ts';

/** Another process joined the group with this process's group instance id: this one is out. */
export class GroupInstanceFencedError extends CdcflowError {
  constructor(
    readonly groupId: string,
    readonly groupInstanceId: string,
    cause: unknown,
  ) {
    super(
      `another process joined consumer group ${groupId} with this process's group instance id "${groupInstanceId}" ` +
        '(FENCED_INSTANCE_ID), so the broker fenced this one; it stopped instead of taking the id back. ' +
        "Give every process its own instance id (CDCFLOW_GROUP_INSTANCE_ID: a StatefulSet pod name, not a Deployment's), or unset it.",
      { domain: 'user', retriable: false, cause },
    );
  }
}

/** Whether kafkajs failed because the broker fenced this static member (anywhere in the cause chain). */
export function isFencedInstance(error: unknown): boolean {
  for (let e = error as { type?: unknown; cause?: unknown; originalError?: unknown } | undefined; e;) {
    if (e.type === 'FENCED_INSTANCE_ID') return true;
    e = (e.cause ?? e.originalError) as typeof e;
  }
  return false;
}

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
  /**
   * Static membership (KIP-345): unique per process and stable across its restarts. The broker
   * keeps a stopped static member's partitions until its session times out. Off when undefined.
   */
  readonly groupInstanceId?: string | undefined;
  /** How partitions are spread: 'sticky' (moves the fewest) or kafkajs's 'round-robin' (for comparison). @default 'sticky' */
  readonly assigner?: 'sticky' | 'round-robin';
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
  /** The latest assignment and its generation: the sticky assigner's next subscription reports them. */
  private owned: readonly OwnedPartition[] = [];
  private generation = -1;
  /** The assigner the group chose at the latest join (round robin while older members are in it). */
  private protocol: string | undefined;

  constructor(private readonly o: GroupMembershipOptions) {
    const kafka = new Kafka(
      kafkaClientConfig(o.connection, {
        clientId: o.clientId,
        logLevel: logLevel.WARN,
        logCreator: kafkajsLogCreator(rootLogger().child({ client: o.clientId })),
      }),
    );
    const assigners: PartitionAssigner[] =
      o.assigner === 'round-robin'
        ? [PartitionAssigners.roundRobin]
        : // Round robin second: a group of older cdcflow processes (round robin only) still forms during an upgrade.
          [
            stickyAssigner({ owned: () => this.owned, generation: () => this.generation }),
            PartitionAssigners.roundRobin,
          ];
    const config: ConsumerConfig & { groupInstanceId?: string } = {
      groupId: o.groupId,
      partitionAssigners: assigners,
      ...(o.groupInstanceId === undefined ? {} : { groupInstanceId: o.groupInstanceId }),
      sessionTimeout: o.sessionTimeoutMs,
      // Kafka's rule of thumb (a third of the session), at most 3 s.
      heartbeatInterval: Math.min(3000, Math.floor(o.sessionTimeoutMs / 3)),
      rebalanceTimeout: o.sessionTimeoutMs,
      ...(o.metadataMaxAgeMs === undefined ? {} : { metadataMaxAge: o.metadataMaxAgeMs }),
      maxWaitTimeInMs: 500,
      maxBytesPerPartition: 1,
      // Fenced by another process with our instance id: restarting would fence it back, forever.
      retry: { retries: 5, restartOnFailure: (e) => Promise.resolve(!this.stopped && !isFencedInstance(e)) },
    };
    this.consumer = kafka.consumer(config);
  }

  /** What /api/group shows of this membership. */
  describe(): { groupInstanceId: string | undefined; assigner: string; generation: number } {
    return {
      groupInstanceId: this.o.groupInstanceId,
      assigner: this.protocol ?? 'not joined yet',
      generation: this.generation,
    };
  }

  /** Whether this process is a static member. */
  get isStatic(): boolean {
    return this.o.groupInstanceId !== undefined;
  }

  async start(): Promise<void> {
    const { consumer } = this;
    if (this.o.groupInstanceId !== undefined) await assertStaticMembershipSupported();
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart || this.stopped) return;
      const { groupInstanceId } = this.o;
      this.o.onFatal(
        groupInstanceId !== undefined && isFencedInstance(payload.error)
          ? new GroupInstanceFencedError(this.o.groupId, groupInstanceId, payload.error)
          : payload.error,
      );
    });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      const owned = Object.entries(payload.memberAssignment).flatMap(([topic, partitions]) =>
        partitions.map((partition) => ({ topic, partition })),
      );
      this.owned = owned;
      // Added to the event by cdcflow's kafkajs patch (scripts/patch-kafkajs.mjs).
      this.generation = (payload as { generationId?: number }).generationId ?? -1;
      this.protocol = payload.groupProtocol;
      // Membership only: nothing is fetched through this consumer.
      consumer.pause(this.o.topics.map((topic) => ({ topic })));
      this.o.onAssignment(owned);
    });
    await consumer.connect();
    for (const topic of this.o.topics) await consumer.subscribe({ topic, fromBeginning: false });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: () => Promise.resolve() });
  }

  /**
   * Disconnects. A dynamic member leaves the group (the broker rebalances the others at once
   * instead of after the session timeout); a static one does not (its partitions wait for it
   * until the session times out).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.consumer.disconnect().catch(() => undefined);
  }
}
