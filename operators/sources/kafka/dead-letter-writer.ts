import { Kafka, logLevel, type Producer } from 'kafkajs';
import { kafkajsLogCreator, rootLogger } from '../../logger.ts';
import { toDeadLetterMessage, type DeadLetter } from './dead-letter.ts';

/** Where rejected messages go. The Kafka writer is at-least-once: a replay may repeat a letter. */
export interface DeadLetterWriter {
  open(): Promise<void>;
  write(letters: readonly DeadLetter[]): Promise<void>;
  close(): Promise<void>;
}

export function deadLetterWriter(options: { brokers: readonly string[]; topic: string; clientId: string }): DeadLetterWriter {
  let producer: Producer | undefined;
  const connect = async (): Promise<Producer> => {
    if (producer !== undefined) return producer;
    const kafka = new Kafka({ clientId: options.clientId, brokers: [...options.brokers], logLevel: logLevel.WARN, logCreator: kafkajsLogCreator(rootLogger()) });
    await ensureTopic(kafka, options.topic);
    const created = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true });
    await created.connect();
    producer = created;
    return created;
  };
  return {
    // Connect lazily: a healthy topic never needs the dead-letter producer.
    open: () => Promise.resolve(),
    async write(letters) {
      const connected = await connect();
      await connected.send({
        topic: options.topic,
        acks: -1,
        messages: letters.map((letter) => {
          const message = toDeadLetterMessage(letter);
          return { key: message.key, value: message.value, headers: { ...message.headers } };
        }),
      });
    },
    async close() {
      await producer?.disconnect();
      producer = undefined;
    },
  };
}

/**
 * Creates the dead-letter topic with the broker's default partitions and replication if it is
 * missing, so dead letters work on brokers that do not create topics on first use (and without the
 * client's error log that auto-creation triggers). A refusal (no permission to create topics) is
 * left to the first send to report: the topic may exist all the same.
 */
async function ensureTopic(kafka: Kafka, topic: string): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.createTopics({ topics: [{ topic }], waitForLeaders: true });
  } catch {
    // See above: the send that follows reports a topic that really is missing.
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
