/**
 * What the Debezium-source integration tests share: topics on the real broker, a job environment
 * in a temporary folder, the final table of an upsert changelog, reading a topic back, and the
 * value of a counter in the job's metrics registry.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type KafkaMessage, type Message } from 'kafkajs';
import { kafkaClientConfig, resolveKafkaConnection } from '../../operators/kafka-connection.ts';
import type { Registry } from 'prom-client';
import {
  StreamEnvironment,
  collectSink,
  type ChangeEvent,
  type JobResult,
  type SourceDefinition,
  type TableChange,
} from '../../runtime/index.ts';
import { testEndpoints } from './endpoints.ts';

export function testKafka(clientId: string): Kafka {
  return new Kafka(
    kafkaClientConfig(resolveKafkaConnection({ brokers: testEndpoints().kafkaBrokers.split(',') }), {
      clientId,
      logLevel: logLevel.NOTHING,
    }),
  );
}

export async function createTopic(kafka: Kafka, topic: string, partitions: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}

/** Produces `messages` in order (each to its own partition), `batchSize` per request. */
export async function produce(
  kafka: Kafka,
  topic: string,
  messages: readonly Message[],
  batchSize = 500,
): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += batchSize) {
      await producer.send({ topic, acks: -1, messages: messages.slice(i, i + batchSize) });
    }
  } finally {
    await producer.disconnect();
  }
}

export interface MessageAt {
  readonly partition: number;
  readonly offset: string;
  readonly message: KafkaMessage;
}

/** Reads `topic` from the beginning in a fresh group until `count` messages arrived, then lingers to catch extras. */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  count: number,
  options: { timeoutMs?: number; lingerMs?: number } = {},
): Promise<MessageAt[]> {
  // A short fetch wait: disconnecting waits for the fetch in flight (kafkajs's default is 5 s).
  const consumer = kafka.consumer({ groupId: `${topic}-reader-${Date.now()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  const received: MessageAt[] = [];
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`read ${received.length} of ${count} messages from ${topic} in time`)),
        options.timeoutMs ?? 30_000,
      );
      consumer
        .run({
          eachMessage: ({ partition, message }) => {
            received.push({ partition, offset: message.offset, message });
            if (received.length === count) {
              clearTimeout(timer);
              setTimeout(resolve, options.lingerMs ?? 1_000);
            }
            return Promise.resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return received;
}

export interface TestJob {
  readonly env: StreamEnvironment;
  readonly log: string[];
  cleanup(): void;
}

/** A job environment with checkpoints and RocksDB state in a fresh temporary folder. */
export function testJob(
  jobName: string,
  checkpointIntervalMs = 500,
  restart: { maxAttempts: number; initialDelayMs?: number } = { maxAttempts: 0 },
): TestJob {
  const dir = mkdtempSync(join(tmpdir(), `cdcflow-${jobName}-`));
  const log: string[] = [];
  const env = StreamEnvironment.create({
    jobName,
    restore: 'none',
    checkpoints: { dir: join(dir, 'checkpoints'), intervalMs: checkpointIntervalMs },
    state: { backend: 'rocksdb', dir: join(dir, 'state') },
    restart,
    log: (line) => log.push(line),
  });
  return { env, log, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Runs the reference projection job (source → keyBy `id` → upsert → collect) to its end; `tap`
 * sees every change event on its way to the upsert. Fails unless it ran without a restart.
 */
export async function runProjection<Row extends object>(
  job: TestJob,
  source: SourceDefinition<ChangeEvent<Row>>,
  tap: (event: ChangeEvent<Row>) => void = () => undefined,
): Promise<{ readonly result: JobResult; readonly changes: TableChange<number, Row>[] }> {
  const changes: TableChange<number, Row>[] = [];
  job.env
    .fromSource(source, { uid: 'orders-source' })
    .map((event) => {
      tap(event);
      return event;
    })
    .keyBy((event) => event.key?.['id'] as number)
    .upsert()
    .sinkTo(collectSink(changes));
  const result = await job.env.execute();
  if (result.restarts !== 0) throw new Error(`the job restarted ${result.restarts} times:\n${job.log.join('\n')}`);
  return { result, changes };
}

/** The table an upsert changelog describes: the last change per key, deletes removed. Rows are spread into plain objects. */
export function finalTable<K, Row extends object>(changes: Iterable<TableChange<K, Row>>): Map<K, Row> {
  const latest = new Map<K, TableChange<K, Row>>();
  for (const change of changes) latest.set(change.key, change);
  const table = new Map<K, Row>();
  for (const [key, change] of latest) if (change.kind === 'upsert') table.set(key, { ...change.row });
  return table;
}

/** The sum of a counter (or gauge) over all its label sets; 0 when it was never raised. */
export async function metricTotal(registry: Registry, name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  return values.reduce((sum, v) => sum + v.value, 0);
}
