/**
 * Reads a topic from its start to the end offsets it has when the read starts, with a consumer
 * group of its own: for tools (dead-letter replay) and tests, never for a job's source.
 */
import type { Kafka, KafkaMessage } from 'kafkajs';

export interface TopicMessage {
  readonly partition: number;
  readonly message: KafkaMessage;
}

export interface ReadTopicOptions {
  /** Fails the read when the end is not reached by then. */
  readonly timeoutMs: number;
  /** What the timeout error says to do. */
  readonly onTimeout: (read: number) => string;
  /** Prefix of the throwaway consumer group. */
  readonly groupPrefix: string;
}

/** Fetches up to this much per partition and request, so large records (dead letters) fit. */
const MAX_FETCH_BYTES = 64 * 1024 * 1024;

/** Every message below the end offsets at the start, partition by partition, in offset order. */
export async function readTopicToEnd(kafka: Kafka, topic: string, options: ReadTopicOptions): Promise<TopicMessage[]> {
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  let pending: Set<number>;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    ends = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
    // A partition whose records retention deleted (low = high) has nothing to wait for.
    pending = new Set(offsets.filter((o) => BigInt(o.high) > BigInt(o.low)).map((o) => o.partition));
  } finally {
    await admin.disconnect();
  }
  const byPartition = new Map<number, KafkaMessage[]>();
  if (pending.size === 0) return [];
  let read = 0;
  const consumer = kafka.consumer({
    groupId: `${options.groupPrefix}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    maxWaitTimeInMs: 200,
    maxBytesPerPartition: MAX_FETCH_BYTES,
    maxBytes: MAX_FETCH_BYTES,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(options.onTimeout(read))), options.timeoutMs);
      consumer
        .run({
          eachMessage: ({ partition, message }) => {
            const end = ends.get(partition);
            if (end !== undefined && BigInt(message.offset) < end) {
              let list = byPartition.get(partition);
              if (list === undefined) byPartition.set(partition, (list = []));
              list.push(message);
              read += 1;
              if (BigInt(message.offset) >= end - 1n) pending.delete(partition);
            }
            if (pending.size === 0) {
              clearTimeout(timer);
              resolve();
            }
            return Promise.resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return [...byPartition.keys()]
    .sort((a, b) => a - b)
    .flatMap((partition) => (byPartition.get(partition) ?? []).map((message) => ({ partition, message })));
}
