import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { Kafka, logLevel } from 'kafkajs';
import type { Message } from 'kafkajs';
import {
  kafkaClientConfig,
  resolveKafkaConnection,
  type KafkaSaslConfig,
  type KafkaSsl,
} from '../../operators/kafka-connection.ts';
import { createOrdersAvroEncoder } from './avro-encoder.ts';
import { generateWorkload } from './generator.ts';
import { ORDERS_TOPIC } from './orders-model.ts';
import type { OrderEnvelope } from './orders-model.ts';
import { WORKLOAD_PRESETS, resolveWorkloadOptions } from './workload-options.ts';
import type { WorkloadOptions, WorkloadSize } from './workload-options.ts';

/** Options of {@link produceWorkload}. */
export interface ProduceWorkloadOptions {
  readonly brokers: readonly string[];
  /** TLS and SASL as the job's clients take them. @default KAFKA_SSL*, KAFKA_SASL_* (operators/kafka-connection.ts) */
  readonly ssl?: KafkaSsl;
  readonly sasl?: KafkaSaslConfig;
  /** @default 'cdc.ecommerce.orders' */
  readonly topic?: string;
  readonly workload?: WorkloadOptions;
  /** Messages per `send`. @default 1_000 */
  readonly batchSize?: number;
  /** Re-encodes each value (e.g. Avro); tombstones stay null. @default the generator's JSON bytes */
  readonly encodeValue?: (event: OrderEnvelope) => Buffer;
}

export interface ProduceSummary {
  readonly records: number;
  readonly bytes: number;
}

/**
 * Writes a generated workload to Kafka, each record to the partition the generator chose (so the
 * oracles' per-partition order is the topic's), creating the topic with the workload's partition
 * count if it does not exist.
 */
export async function produceWorkload(options: ProduceWorkloadOptions): Promise<ProduceSummary> {
  const workload = resolveWorkloadOptions(options.workload);
  const topic = options.topic ?? ORDERS_TOPIC;
  const connection = resolveKafkaConnection({
    brokers: options.brokers,
    ...(options.ssl === undefined ? {} : { ssl: options.ssl }),
    ...(options.sasl === undefined ? {} : { sasl: options.sasl }),
  });
  const kafka = new Kafka(kafkaClientConfig(connection, { clientId: 'cdcflow-workload', logLevel: logLevel.WARN }));
  await ensureTopic(kafka, topic, workload.partitions);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let records = 0;
  let bytes = 0;
  try {
    let batch: Message[] = [];
    for (const record of generateWorkload(workload)) {
      const value =
        record.event === null || options.encodeValue === undefined ? record.value : options.encodeValue(record.event);
      batch.push({ key: record.key, value, partition: record.partition });
      records += 1;
      bytes += record.key.length + (value?.length ?? 0);
      if (batch.length >= (options.batchSize ?? 1_000)) {
        await producer.send({ topic, messages: batch, acks: -1 });
        batch = [];
      }
    }
    if (batch.length > 0) await producer.send({ topic, messages: batch, acks: -1 });
  } finally {
    await producer.disconnect();
  }
  return { records, bytes };
}

async function ensureTopic(kafka: Kafka, topic: string, partitions: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topic)) {
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
    }
  } finally {
    await admin.disconnect();
  }
}

/** `tsx scripts/workload/producer.ts --brokers localhost:9092 --size S [--registry http://…] [--seed 1]` */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      brokers: { type: 'string', default: process.env['KAFKA_BROKERS'] ?? 'localhost:9092' },
      topic: { type: 'string', default: ORDERS_TOPIC },
      size: { type: 'string', default: 'S' },
      seed: { type: 'string', default: '1' },
      registry: { type: 'string' },
    },
  });
  const size = values.size as WorkloadSize;
  if (!(size in WORKLOAD_PRESETS)) throw new Error(`--size must be one of ${Object.keys(WORKLOAD_PRESETS).join(', ')}`);
  const encoder =
    values.registry === undefined
      ? undefined
      : await createOrdersAvroEncoder(new SchemaRegistry({ host: values.registry }));
  const summary = await produceWorkload({
    brokers: values.brokers.split(','),
    topic: values.topic,
    workload: { ...WORKLOAD_PRESETS[size], seed: Number(values.seed) },
    ...(encoder === undefined ? {} : { encodeValue: encoder.encode }),
  });
  console.log(`produced ${summary.records} records (${summary.bytes} bytes) to ${values.topic}`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
