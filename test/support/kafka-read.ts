import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
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
export async function readValuesUntil(kafka: Kafka, topic: string, last: string, options: ReadUntilOptions = {}): Promise<string[]> {
  const messages = await readMessagesUntil(kafka, topic, (m) => (m.value?.toString() ?? options.nullAs ?? '<null>') === last, options);
  return messages.map((m) => m.value?.toString() ?? options.nullAs ?? '<null>');
}

/** Reads `topic` (every partition) from the beginning in a fresh group until a message satisfies `isLast`, which is included. */
export async function readMessagesUntil(kafka: Kafka, topic: string, isLast: (message: KafkaMessage) => boolean, options: ReadUntilOptions = {}): Promise<KafkaMessage[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('reader'), readUncommitted: options.readUncommitted ?? false });
  options.track?.(consumer);
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const messages: KafkaMessage[] = [];
  const timeoutMs = options.timeoutMs ?? 60_000;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no last message on ${topic} within ${timeoutMs} ms; read ${messages.length}`)), timeoutMs);
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
