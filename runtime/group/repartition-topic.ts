/**
 * A keyBy on another key across processes, in Kafka Streams' repartition-topic model: the
 * upstream stage's partition tasks write their records, keyed by the new key, into an internal
 * topic `<job>-<name>-repartition` with the two-phase Kafka sink (one Kafka transaction per
 * checkpoint, committed when the task's checkpoint completes; transactional ids carry the task's
 * name, so a new owner's `initTransactions` fences the old one). The downstream stage is a second
 * group of partition tasks, one per partition of the internal topic, reading it read_committed
 * with `debeziumSource` (positions from its own checkpoints). No network layer of our own: Kafka
 * carries the exchange, and with it each upstream task's watermark (repartition-sink.ts), so
 * downstream lateness follows the upstream source partitions' watermarks. See docs/group-mode.md
 * ("Exchanges between stages").
 */
import { Kafka } from 'kafkajs';
import type { ChangeEvent } from '../../operators/change-event.ts';
import {
  kafkaClientConfig,
  resolveKafkaConnection,
  type KafkaConnection,
  type KafkaSaslConfig,
  type KafkaSsl,
} from '../../operators/kafka-connection.ts';
import { kafkaSink } from '../../operators/sinks/kafka/kafka-sink.ts';
import type { KafkaSinkMessage } from '../../operators/sinks/kafka/kafka-sink-options.ts';
import type { SinkDefinition } from '../../operators/sinks/sink.ts';
import {
  EXCHANGE_HEADERS,
  WATERMARK_CONTROL,
  formatWatermark,
} from '../../operators/sources/kafka/exchange-headers.ts';
import type { CarriedWatermark } from '../../operators/sources/source.ts';
import { CdcflowError } from '../../state/errors.ts';
import { debeziumEnvelopeJson } from './debezium-reencode.ts';
import { exchangePartition } from './exchange-partitioner.ts';
import { carryingSink, type Outgoing } from './repartition-sink.ts';

export class RepartitionTopicError extends CdcflowError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { domain: 'user', retriable: false, ...options });
    this.name = 'RepartitionTopicError';
  }
}

export interface RepartitionTopicOptions {
  /** The job's name (the one every stage shares). */
  readonly jobName: string;
  /** The exchange's name within the job, e.g. `by-status`. */
  readonly name: string;
  readonly brokers?: readonly string[];
  readonly ssl?: KafkaSsl;
  readonly sasl?: KafkaSaslConfig;
}

const NAME = /^[A-Za-z0-9._-]+$/;

/** `<job>-<name>-repartition`, as Kafka Streams names its internal topics. */
export function repartitionTopicName(jobName: string, name: string): string {
  const topic = `${jobName}-${name}-repartition`;
  if (!NAME.test(jobName) || !NAME.test(name) || topic.length > 249)
    throw new RepartitionTopicError(
      `repartition topic "${topic}" is not a valid Kafka topic name: use letters, digits, '.', '_' and '-' in the job and exchange names (249 characters at most)`,
    );
  return topic;
}

/**
 * One record of a repartition topic: placed by the exchange key, keyed by the row's own Debezium
 * key (the source checks that a key names the row's columns and agrees with both images, which an
 * exchange key such as a status, changed by the update, would not), valued as the Debezium envelope.
 */
export function repartitionMessage<Row>(
  event: ChangeEvent<Row>,
  keyOf: (event: ChangeEvent<Row>) => string | number,
  partitions: number,
  carried?: CarriedWatermark,
): KafkaSinkMessage {
  const exchangeKey = String(keyOf(event));
  return {
    key: event.key === null ? null : JSON.stringify(event.key),
    value: debeziumEnvelopeJson(event as ChangeEvent<unknown>),
    partition: exchangePartition(exchangeKey, partitions),
    headers: { 'cdcflow.exchange-key': exchangeKey, ...(carried === undefined ? {} : watermarkHeaders(carried)) },
    sourceTsMs: event.source.tsMs,
  };
}

/** A watermark-only control record for `partition`: no key, no value; the downstream source consumes it. */
export function watermarkControlMessage(partition: number, carried: CarriedWatermark): KafkaSinkMessage {
  return {
    key: null,
    value: null,
    partition,
    headers: { [EXCHANGE_HEADERS.control]: WATERMARK_CONTROL, ...watermarkHeaders(carried) },
  };
}

function watermarkHeaders(carried: CarriedWatermark): Record<string, string> {
  return {
    [EXCHANGE_HEADERS.watermark]: formatWatermark(carried.watermark),
    [EXCHANGE_HEADERS.origin]: carried.origin,
    ...(carried.origins === undefined ? {} : { [EXCHANGE_HEADERS.origins]: String(carried.origins) }),
  };
}

export interface RepartitionSinkOptions {
  /** The sink's name in the stage's graph. @default `repartition-<exchange name>` */
  readonly name?: string;
  /**
   * Carry the upstream task's watermark through the topic (record headers and watermark-only
   * control records, docs/group-mode.md), so the downstream stage decides lateness by the
   * upstream source partitions' watermarks. The upstream stage then needs event time: a
   * watermark strategy on its `fromSource` (a fresh task that writes records without one fails,
   * saying so). `false`: records only, the downstream watermark follows the internal partition's
   * own record times (lateness then depends on how the upstream tasks' commits interleave).
   * @default true
   */
  readonly carryWatermarks?: boolean;
  /**
   * How many upstream tasks write the topic (group mode: the upstream stage's source partitions,
   * `partitionsOf(topic)`). Told downstream with every watermark, so a downstream partition holds
   * event time back until it has heard from every upstream task (or its idleness timeout passed):
   * at a fresh start, one upstream task's first commit cannot then advance it before another's
   * announcement arrived. @default not told: an upstream task counts from its first record or
   * control record
   */
  readonly upstreamTasks?: number;
}

export class RepartitionTopic {
  readonly topic: string;
  readonly connection: KafkaConnection;
  /** Known once `ensure` has run. */
  partitions: number | undefined;

  constructor(private readonly options: RepartitionTopicOptions) {
    this.topic = repartitionTopicName(options.jobName, options.name);
    this.connection = resolveKafkaConnection({
      ...(options.brokers === undefined ? {} : { brokers: options.brokers }),
      ...(options.ssl === undefined ? {} : { ssl: options.ssl }),
      ...(options.sasl === undefined ? {} : { sasl: options.sasl }),
    });
  }

  /**
   * Creates the topic with `partitions` partitions if it is missing (every process may race to:
   * "already exists" is success). Returns its partition count, which may differ if it existed.
   */
  async ensure(partitions: number, replicationFactor = 1): Promise<number> {
    if (!Number.isInteger(partitions) || partitions < 1)
      throw new RepartitionTopicError(`repartition topic ${this.topic}: partitions must be an integer ≥ 1`);
    const admin = new Kafka(
      kafkaClientConfig(this.connection, { clientId: `${this.options.jobName}-repartition-admin` }),
    ).admin();
    await admin.connect();
    try {
      await admin
        .createTopics({
          topics: [{ topic: this.topic, numPartitions: partitions, replicationFactor }],
          waitForLeaders: true,
        })
        .catch((error: unknown) => {
          if ((error as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw error;
        });
      const [meta] = (await admin.fetchTopicMetadata({ topics: [this.topic] })).topics;
      this.partitions = meta?.partitions.length ?? partitions;
      return this.partitions;
    } finally {
      await admin.disconnect();
    }
  }

  /** The partition count of the upstream topic, so the internal topic can match it. */
  async partitionsOf(topic: string): Promise<number> {
    const admin = new Kafka(
      kafkaClientConfig(this.connection, { clientId: `${this.options.jobName}-repartition-admin` }),
    ).admin();
    await admin.connect();
    try {
      const [meta] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
      if (meta === undefined || meta.partitions.length === 0)
        throw new RepartitionTopicError(`topic ${topic} has no partitions: create it before starting the job`);
      return meta.partitions.length;
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * The upstream stage's sink: each change event goes to the partition of its exchange key
   * (`keyOf`, hashed as Kafka's default partitioner would), so one key always lands in one
   * downstream task; the message keeps the row's own Debezium key and the value is the Debezium
   * JSON envelope, so the downstream stage reads it with `debeziumSource` (whose key checks and
   * replay guards stay per row) and keys by the exchange key again there. Call `ensure` first;
   * give each partition task its own sink (its job name names the transactional ids).
   */
  sink<Row>(
    keyOf: (event: ChangeEvent<Row>) => string | number,
    options: RepartitionSinkOptions = {},
  ): SinkDefinition<ChangeEvent<Row>> {
    const partitions = this.partitions;
    if (partitions === undefined)
      throw new RepartitionTopicError(`repartition topic ${this.topic}: call ensure() before building its sink`);
    const name = options.name ?? `repartition-${this.options.name}`;
    const tasks = options.upstreamTasks;
    if (tasks !== undefined && !(Number.isSafeInteger(tasks) && tasks > 0))
      throw new RepartitionTopicError(`repartition topic ${this.topic}: upstreamTasks must be an integer ≥ 1`);
    if (options.carryWatermarks === false)
      return this.kafkaSinkOf<ChangeEvent<Row>>(name, (event) => repartitionMessage(event, keyOf, partitions));
    const topic = this.topic;
    return carryingSink<Row>({
      inner: this.kafkaSinkOf<Outgoing<Row>>(name, (out) =>
        out.kind === 'control'
          ? watermarkControlMessage(out.partition, out.carried)
          : repartitionMessage(out.event, keyOf, partitions, out.carried),
      ),
      partitions,
      ...(options.upstreamTasks === undefined ? {} : { upstreamTasks: options.upstreamTasks }),
      partitionOf: (event) => exchangePartition(String(keyOf(event)), partitions),
      noWatermark: () =>
        new RepartitionTopicError(
          `repartition topic ${topic}: the upstream stage wrote records but has no watermark to carry; declare its event time on its source (env.fromSource(source, { watermarks: WatermarkStrategy.boundedOutOfOrderness(ms).withIdleness(ms) })) or build the sink with { carryWatermarks: false }`,
        ),
    });
  }

  private kafkaSinkOf<T>(name: string, serialize: (value: T) => KafkaSinkMessage): SinkDefinition<T> {
    return kafkaSink<T>({
      brokers: this.connection.brokers,
      ...(this.connection.ssl === undefined ? {} : { ssl: this.connection.ssl }),
      ...(this.connection.sasl === undefined ? {} : { sasl: this.connection.sasl }),
      topic: this.topic,
      name,
      // A record the broker refuses would vanish from the exchange: stop instead.
      onRefused: 'fail',
      serialize,
    });
  }
}
