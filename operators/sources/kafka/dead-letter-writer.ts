import { Kafka, logLevel, type Admin, type ConfigResourceTypes, type Producer } from 'kafkajs';
import { kafkaClientConfig, type KafkaConnection } from '../../kafka-connection.ts';
import {
  deadLetterMessageBytes,
  fitDeadLetterMessage,
  toDeadLetterMessage,
  type DeadLetter,
  type DeadLetterMessage,
} from './dead-letter.ts';

/** Where rejected messages go. The Kafka writer is at-least-once: a replay may repeat a letter. */
export interface DeadLetterWriter {
  open(): Promise<void>;
  write(letters: readonly DeadLetter[]): Promise<void>;
  close(): Promise<void>;
}

export interface DeadLetterWriterOptions {
  readonly brokers: readonly string[];
  /** TLS/SASL settings of the cluster (operators/kafka-connection.ts). @default brokers only */
  readonly connection?: KafkaConnection;
  readonly topic: string;
  readonly clientId: string;
  /**
   * Topics whose records may be dead-lettered: a dead-letter topic this writer creates gets the
   * largest `max.message.bytes` among them, so a record the source accepted fits as a letter.
   * @default none (the broker's default)
   */
  readonly sourceTopics?: readonly string[];
}

/** Kafka's default `max.message.bytes` (a topic without an override, a broker without `message.max.bytes`). */
export const KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
/** kafkajs's `ConfigResourceTypes.TOPIC`; the enum is not a named ESM export of the CommonJS package. */
const TOPIC_RESOURCE = 2 as ConfigResourceTypes;
/** Room kept under the limit for the record batch header and per-record framing. */
const BATCH_OVERHEAD_BYTES = 1024;

export function deadLetterWriter(options: DeadLetterWriterOptions): DeadLetterWriter {
  let connected: { producer: Producer; maxBytes: number } | undefined;
  const connect = async (): Promise<{ producer: Producer; maxBytes: number }> => {
    if (connected !== undefined) return connected;
    const kafka = new Kafka(
      kafkaClientConfig(options.connection ?? { brokers: options.brokers }, {
        clientId: options.clientId,
        logLevel: logLevel.WARN,
      }),
    );
    const maxMessageBytes = await ensureTopic(kafka, options.topic, options.sourceTopics ?? []);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true });
    await producer.connect();
    connected = { producer, maxBytes: maxMessageBytes - BATCH_OVERHEAD_BYTES };
    return connected;
  };
  return {
    // Connect lazily: a healthy topic never needs the dead-letter producer.
    open: () => Promise.resolve(),
    async write(letters) {
      if (letters.length === 0) return;
      const { producer, maxBytes } = await connect();
      const messages = letters.map((letter) => fitDeadLetterMessage(toDeadLetterMessage(letter), maxBytes));
      for (const chunk of chunksUnder(messages, maxBytes)) {
        await producer.send({
          topic: options.topic,
          acks: -1,
          messages: chunk.map((m) => ({ key: m.key, value: m.value, headers: { ...m.headers } })),
        });
      }
    },
    async close() {
      await connected?.producer.disconnect();
      connected = undefined;
    },
  };
}

/**
 * Splits letters into sends whose record batch stays under the topic's limit: kafkajs puts one
 * send's messages for a partition into one batch, and the broker refuses a batch over
 * `max.message.bytes` as a whole.
 */
export function chunksUnder(messages: readonly DeadLetterMessage[], maxBytes: number): DeadLetterMessage[][] {
  const chunks: DeadLetterMessage[][] = [];
  let current: DeadLetterMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = deadLetterMessageBytes(message);
    if (current.length > 0 && bytes + size > maxBytes) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Creates the dead-letter topic if it is missing, with a `max.message.bytes` as large as the
 * largest of its source topics (so dead letters work on brokers that do not create topics on
 * first use, and a record the source accepted fits as a letter), and returns the dead-letter
 * topic's actual limit. A refusal (no permission to create or describe topics) is left to the
 * first send to report; the limit then falls back to Kafka's default, which truncation respects.
 */
async function ensureTopic(kafka: Kafka, topic: string, sourceTopics: readonly string[]): Promise<number> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const sourceLimits = await topicLimits(admin, sourceTopics);
    const wanted = Math.max(KAFKA_DEFAULT_MAX_MESSAGE_BYTES, ...sourceLimits.values());
    const configEntries =
      wanted > KAFKA_DEFAULT_MAX_MESSAGE_BYTES ? [{ name: 'max.message.bytes', value: String(wanted) }] : [];
    // Asked first: creating a topic that exists makes kafkajs log an error (another writer of the job may have made it).
    if (!(await admin.listTopics()).includes(topic))
      await admin.createTopics({ topics: [{ topic, configEntries }], waitForLeaders: true }).catch(() => false);
    return (await topicLimits(admin, [topic])).get(topic) ?? KAFKA_DEFAULT_MAX_MESSAGE_BYTES;
  } catch {
    return KAFKA_DEFAULT_MAX_MESSAGE_BYTES;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** `max.message.bytes` of each topic that exists (topics that do not are left out). */
export async function topicLimits(admin: Admin, topics: readonly string[]): Promise<Map<string, number>> {
  const limits = new Map<string, number>();
  for (const name of topics) {
    try {
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: TOPIC_RESOURCE, name, configNames: ['max.message.bytes'] }],
      });
      const value = described.resources[0]?.configEntries.find(
        (e) => e.configName === 'max.message.bytes',
      )?.configValue;
      const n = Number(value);
      if (Number.isFinite(n) && n > 0) limits.set(name, n);
    } catch {
      // A topic that does not exist (yet) or that we may not describe: no limit to match.
    }
  }
  return limits;
}
