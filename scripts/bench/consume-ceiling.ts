/** The raw consume ceiling: a bare kafkajs consumer counting a topic's messages (what the client can fetch). */
import { Kafka, logLevel } from 'kafkajs';
import { kafkaClientConfig, resolveKafkaConnection } from '../../operators/kafka-connection.ts';
import { finish, mark, newSpan, type Measured } from './bench-child.ts';

export async function consumeCeiling(brokers: readonly string[], topic: string, messages: number): Promise<Measured> {
  const wallStart = Date.now();
  const kafka = new Kafka(
    kafkaClientConfig(resolveKafkaConnection({ brokers }), {
      clientId: 'cdcflow-bench-ceiling',
      logLevel: logLevel.WARN,
    }),
  );
  // The same consumer settings as KafkajsFetcher, so the ceiling is the client's, not a tuning's.
  const consumer = kafka.consumer({
    groupId: `bench-ceiling-${process.pid}-${Date.now()}`,
    maxBytesPerPartition: 1024 * 1024,
    sessionTimeout: 30_000,
    heartbeatInterval: 3000,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let count = 0;
  const span = newSpan();
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        autoCommit: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: async ({ batch, resolveOffset }) => {
          count += batch.messages.length;
          resolveOffset(batch.lastOffset());
          mark(span);
          if (count >= messages) resolve();
        },
      })
      .catch(reject);
  });
  const result = finish(count, span, wallStart);
  await consumer.disconnect();
  return result;
}
