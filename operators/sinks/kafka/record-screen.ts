/**
 * Records the broker would refuse, found before they enter the sink's transaction: a produce the
 * broker refuses (a record over the topic's `max.message.bytes`) fails the whole Kafka
 * transaction, and every other record of the checkpoint with it — a restart loop. So each
 * serialised message is checked (key, value and header types the producer can encode; its size
 * against its topic's limit, read once per topic) and sends are split so no partition's record
 * batch can exceed the limit.
 */
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { kafkaClientConfig, type KafkaConnection } from '../../kafka-connection.ts';
import { KAFKA_DEFAULT_MAX_MESSAGE_BYTES, topicLimits } from '../../sources/kafka/dead-letter-writer.ts';
import type { KafkaSinkMessage } from './kafka-sink-options.ts';

/** Room for the record batch header (61 bytes) and slack for our estimate of the framing. */
export const RECORD_BATCH_OVERHEAD_BYTES = 512;
/** Per-record framing (length, attributes, deltas, varints) at most. */
const RECORD_FRAMING_BYTES = 32;

/** What is wrong with a message the producer could not send, or undefined. */
export function invalidMessage(message: unknown): string | undefined {
  if (message === null || typeof message !== 'object')
    return `serialize returned ${message === null ? 'null' : typeof message}, not a message`;
  const m = message as Record<string, unknown>;
  for (const field of ['key', 'value'] as const) {
    const v = m[field];
    if (v !== null && v !== undefined && typeof v !== 'string' && !Buffer.isBuffer(v))
      return `the message ${field} is ${Array.isArray(v) ? 'an array' : typeof v}: serialise it to a string or Buffer`;
  }
  if (m['topic'] !== undefined && (typeof m['topic'] !== 'string' || m['topic'] === ''))
    return 'the message topic must be a non-empty string';
  if (m['partition'] !== undefined && !(Number.isInteger(m['partition']) && (m['partition'] as number) >= 0))
    return `the message partition ${String(m['partition'])} is not a partition number`;
  const headers = m['headers'];
  if (headers !== undefined && headers !== null) {
    if (typeof headers !== 'object') return 'the message headers must be an object';
    for (const [name, v] of Object.entries(headers)) {
      if (typeof v !== 'string' && !Buffer.isBuffer(v))
        return `header ${name} is ${v === undefined ? 'undefined' : typeof v}: headers must be strings`;
    }
  }
  return undefined;
}

/** The bytes a message takes in a record batch (an upper bound, uncompressed). */
export function messageBytes(message: KafkaSinkMessage): number {
  let bytes = RECORD_FRAMING_BYTES + byteLength(message.key) + byteLength(message.value);
  for (const [name, v] of Object.entries(message.headers ?? {})) bytes += 10 + Buffer.byteLength(name) + byteLength(v);
  return bytes;
}

function byteLength(v: Buffer | string | null | undefined): number {
  return v === null || v === undefined ? 0 : Buffer.isBuffer(v) ? v.length : Buffer.byteLength(v);
}

/** `max.message.bytes` per output topic, asked once (a missing topic gets the broker's default). */
export class TopicLimits {
  private readonly limits = new Map<string, number>();

  constructor(private readonly connection: KafkaConnection) {}

  async of(topic: string): Promise<number> {
    const known = this.limits.get(topic);
    if (known !== undefined) return known;
    let admin: Admin | undefined;
    let limit = KAFKA_DEFAULT_MAX_MESSAGE_BYTES;
    try {
      admin = new Kafka(
        kafkaClientConfig(this.connection, { clientId: 'cdcflow-kafka-sink-limits', logLevel: logLevel.NOTHING }),
      ).admin();
      await admin.connect();
      limit = (await topicLimits(admin, [topic])).get(topic) ?? KAFKA_DEFAULT_MAX_MESSAGE_BYTES;
    } catch {
      // Not allowed to describe the topic: Kafka's default is the safe guess (a larger record may be dead-lettered needlessly).
    } finally {
      await admin?.disconnect().catch(() => undefined);
    }
    this.limits.set(topic, limit);
    return limit;
  }
}
