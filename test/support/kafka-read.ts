import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { resolveKafkaConnection } from '../../operators/kafka-connection.ts';
import { InternalClient } from '../../operators/sinks/kafka/kafkajs-internals.ts';
import { uniqueName } from './endpoints.ts';

export interface ReadUntilOptions {
  /** @default false (read_committed) */
  readonly readUncommitted?: boolean;
  /** What a null value (tombstone) reads as. @default '<null>' */
  readonly nullAs?: string;
  /** Told about the consumer, so the test can disconnect it if the read fails. */
  readonly track?: (consumer: Consumer) => void;
  /** @default 60000 */
  readonly timeoutMs?: number;
}

/** Reads `topic` from the beginning in a fresh group until a record with value `last` arrives (60 s at most). */
export async function readValuesUntil(
  kafka: Kafka,
  topic: string,
  last: string,
  options: ReadUntilOptions = {},
): Promise<string[]> {
  const messages = await readMessagesUntil(
    kafka,
    topic,
    (m) => (m.value?.toString() ?? options.nullAs ?? '<null>') === last,
    options,
  );
  return messages.map((m) => m.value?.toString() ?? options.nullAs ?? '<null>');
}

/** Reads `topic` (every partition) from the beginning in a fresh group until a message satisfies `isLast`, which is included. */
export async function readMessagesUntil(
  kafka: Kafka,
  topic: string,
  isLast: (message: KafkaMessage) => boolean,
  options: ReadUntilOptions = {},
): Promise<KafkaMessage[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('reader'), readUncommitted: options.readUncommitted ?? false });
  options.track?.(consumer);
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const messages: KafkaMessage[] = [];
  const timeoutMs = options.timeoutMs ?? 60_000;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no last message on ${topic} within ${timeoutMs} ms; read ${messages.length}`)),
        timeoutMs,
      );
      consumer
        .run({
          eachMessage: async ({ message }) => {
            messages.push(message);
            if (isLast(message)) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

/** One record of a topic as the log holds it. */
export interface LoggedRecord {
  readonly partition: number;
  readonly offset: bigint;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
}

/** A topic read to its end, every transaction resolved by its own marker. */
export interface TransactionalLog {
  /** Committed and non-transactional records, per partition in offset order (partitions ascending). */
  readonly committed: readonly LoggedRecord[];
  readonly commitMarkers: number;
  readonly abortMarkers: number;
  readonly abortedRecords: number;
  /** Transactional records with no marker yet: a transaction left open (it holds back the last stable offset). */
  readonly openRecords: number;
  /** Per partition, the offset after the last record read (the high watermark). */
  readonly ends: ReadonlyMap<number, bigint>;
}

interface RawFetchedMessage {
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Record<string, Buffer | Buffer[] | undefined>;
  readonly isControlRecord: boolean;
  readonly batchContext: { readonly producerId: string; readonly inTransaction: boolean };
}
interface FetchBroker {
  fetch(request: {
    replicaId: number;
    isolationLevel: number;
    maxWaitTime: number;
    minBytes: number;
    maxBytes: number;
    topics: { topic: string; partitions: { partition: number; fetchOffset: string; maxBytes: number }[] }[];
  }): Promise<{
    responses: {
      partitions: { partition: number; errorCode: number; highWatermark: string; messages: RawFetchedMessage[] }[];
    }[];
  }>;
}
/** The parts of kafkajs 2.2.4's Cluster a raw reader needs (the sink already builds one: kafkajs-internals.ts). */
interface ReaderCluster {
  addTargetTopic(topic: string): Promise<void>;
  findTopicPartitionMetadata(topic: string): { partitionId: number; leader: number }[];
  findBroker(request: { nodeId: number }): Promise<FetchBroker>;
}

const READ_UNCOMMITTED = 0;
const CONTROL_TYPE_COMMIT = 1;

/**
 * Reads every partition of `topic` from offset 0 to its high watermark with raw Fetch requests
 * (read_uncommitted, so control records and aborted data come back too) and resolves each
 * transactional record by the next marker of its producer in that partition — the definition of
 * read_committed, without kafkajs's consumer-side filter (which can let aborted records through,
 * see the README) and without the broker's aborted-transaction index.
 */
export async function readTransactionalLog(
  brokers: readonly string[],
  topic: string,
  timeoutMs = 120_000,
): Promise<TransactionalLog> {
  const client = new InternalClient({
    connection: resolveKafkaConnection({ brokers }),
    clientId: uniqueName('log-reader'),
    transactionTimeoutMs: 60_000,
  });
  await client.connect();
  try {
    const cluster = client.cluster as unknown as ReaderCluster;
    await cluster.addTargetTopic(topic);
    const partitions = cluster.findTopicPartitionMetadata(topic).sort((a, b) => a.partitionId - b.partitionId);
    const deadline = Date.now() + timeoutMs;
    const totals = { commitMarkers: 0, abortMarkers: 0, abortedRecords: 0, openRecords: 0 };
    const committed: LoggedRecord[] = [];
    const ends = new Map<number, bigint>();
    for (const { partitionId, leader } of partitions) {
      const broker = await cluster.findBroker({ nodeId: leader });
      const read = await readPartition(broker, topic, partitionId, deadline);
      committed.push(...read.committed);
      ends.set(partitionId, read.end);
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += read[k];
    }
    return { committed, ends, ...totals };
  } finally {
    await client.disconnect();
  }
}

async function readPartition(broker: FetchBroker, topic: string, partition: number, deadline: number) {
  const open = new Map<string, LoggedRecord[]>();
  const decided: LoggedRecord[] = [];
  const counts = { commitMarkers: 0, abortMarkers: 0, abortedRecords: 0, openRecords: 0 };
  let next = 0n;
  for (let fetches = 0; ; fetches++) {
    if (Date.now() > deadline || fetches > 100_000)
      throw new Error(`reading ${topic}:${partition} did not reach its end in time (at offset ${next})`);
    const request = {
      replicaId: -1,
      isolationLevel: READ_UNCOMMITTED,
      maxWaitTime: 100,
      minBytes: 1,
      maxBytes: 16 << 20,
    };
    const response = await broker.fetch({
      ...request,
      topics: [{ topic, partitions: [{ partition, fetchOffset: String(next), maxBytes: 8 << 20 }] }],
    });
    const data = response.responses[0]?.partitions[0];
    if (data === undefined || data.errorCode !== 0)
      throw new Error(`fetch ${topic}:${partition}@${next} failed (error code ${data?.errorCode ?? 'none'})`);
    const highWatermark = BigInt(data.highWatermark);
    for (const m of data.messages) {
      const offset = BigInt(m.offset);
      if (offset < next) continue; // batches start before the fetch offset
      next = offset + 1n;
      const pid = m.batchContext.producerId;
      if (m.isControlRecord) {
        const records = open.get(pid) ?? [];
        open.delete(pid);
        if (m.key !== null && m.key.length >= 4 && m.key.readInt16BE(2) === CONTROL_TYPE_COMMIT) {
          counts.commitMarkers += 1;
          decided.push(...records);
        } else {
          counts.abortMarkers += 1;
          counts.abortedRecords += records.length;
        }
        continue;
      }
      const record: LoggedRecord = { partition, offset, key: m.key, value: m.value, headers: headerText(m.headers) };
      if (!m.batchContext.inTransaction) decided.push(record);
      else open.set(pid, [...(open.get(pid) ?? []), record]);
    }
    if (next >= highWatermark) {
      for (const records of open.values()) counts.openRecords += records.length;
      decided.sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
      return { committed: decided, end: highWatermark, ...counts };
    }
  }
}

function headerText(headers: RawFetchedMessage['headers']): Record<string, string> {
  const text: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers))
    if (value !== undefined) text[name] = (Array.isArray(value) ? value.at(-1) : value)?.toString() ?? '';
  return text;
}

/**
 * Reads `topic` from the beginning with a kafkajs read_committed consumer until every partition
 * reached `ends` (offsets after its last committed record), or nothing new came for `idleMs`.
 */
export async function readCommittedWithKafkajs(
  kafka: Kafka,
  topic: string,
  ends: ReadonlyMap<number, bigint>,
  idleMs = 15_000,
): Promise<LoggedRecord[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('reader'), readUncommitted: false, maxWaitTimeInMs: 100 });
  await consumer.connect();
  const records: LoggedRecord[] = [];
  const reached = new Set<number>();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let lastAt = Date.now();
    const done = () => [...ends].every(([p, end]) => end === 0n || reached.has(p));
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        lastAt = Date.now();
        const offset = BigInt(message.offset);
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(message.headers ?? {}))
          if (value !== undefined) headers[name] = String(Array.isArray(value) ? value.at(-1) : value);
        records.push({ partition, offset, key: message.key, value: message.value, headers });
        if (offset + 1n >= (ends.get(partition) ?? 0n)) reached.add(partition);
      },
    });
    for (let i = 0; i < 100_000 && !done() && Date.now() - lastAt < idleMs; i++)
      await new Promise((resolve) => setTimeout(resolve, 100));
  } finally {
    await consumer.disconnect();
  }
  return records.sort((a, b) => a.partition - b.partition || (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
}
