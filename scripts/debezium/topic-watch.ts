import { Kafka, logLevel } from 'kafkajs';

/**
 * Reads `topic` from the beginning (a fresh group each call) until a message with key `key`
 * arrives; returns how many messages came before it. For "has the connector delivered
 * everything committed before this marker row?".
 */
export async function waitForKey(
  brokers: readonly string[],
  topic: string,
  key: string,
  timeoutMs = 120_000,
): Promise<number> {
  const kafka = new Kafka({ clientId: 'cdcflow-topic-watch', brokers: [...brokers], logLevel: logLevel.NOTHING });
  const groupId = `cdcflow-topic-watch-${process.pid}-${Date.now()}`;
  const consumer = kafka.consumer({ groupId });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let count = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `key ${key} did not arrive on ${topic} within ${timeoutMs} ms (read ${count} messages); is the connector running?`,
            ),
          ),
        timeoutMs,
      );
      void consumer
        .run({
          eachMessage: async ({ message }) => {
            count += 1;
            if (message.key?.toString() === key) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
    return count;
  } finally {
    await consumer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}
