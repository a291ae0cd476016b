import type { Consumer, Kafka } from 'kafkajs';
import { uniqueName } from './endpoints.ts';

export interface ReadUntilOptions {
  /** @default false (read_committed) */
  readonly readUncommitted?: boolean;
  /** What a null value (tombstone) reads as. @default '<null>' */
  readonly nullAs?: string;
  /** Told about the consumer, so the test can disconnect it if the read fails. */
  readonly track?: (consumer: Consumer) => void;
}

/** Reads `topic` from the beginning in a fresh group until a record with value `last` arrives (60 s at most). */
export async function readValuesUntil(kafka: Kafka, topic: string, last: string, options: ReadUntilOptions = {}): Promise<string[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('reader'), readUncommitted: options.readUncommitted ?? false });
  options.track?.(consumer);
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const values: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${last}' on ${topic} within 60 s; read ${values.join(',')}`)), 60_000);
    consumer
      .run({
        eachMessage: async ({ message }) => {
          const value = message.value?.toString() ?? options.nullAs ?? '<null>';
          values.push(value);
          if (value === last) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return values;
}
