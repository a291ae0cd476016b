/**
 * Re-injects dead letters once their cause is fixed: reads a dead-letter topic from its start to
 * the end it has now, keeps the letters matching the filters, and produces each letter's original
 * key and value (the bytes the source read, or for operator and sink letters the record written
 * back as Debezium JSON where it was a change event) to the topic it was read from, or to `to`.
 *
 * A letter is replayed once per run even if the dead-letter topic holds it twice (at-least-once
 * writing): letters are deduplicated on their source coordinates and stage. Letters whose value
 * was truncated to fit the dead-letter topic cannot be restored and are counted, not replayed.
 */
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { DLQ_HEADERS } from './dead-letter.ts';
import { readTopicToEnd } from './topic-read.ts';

export interface ReplayOptions {
  readonly brokers: readonly string[];
  /** The dead-letter topic to read. */
  readonly from: string;
  /** Where to produce. @default each letter's source topic (`cdcflow.dlq.topic`) */
  readonly to?: string;
  /** Only letters of this reason (`cdcflow.dlq.error-kind`, e.g. `sink-refused`). */
  readonly reason?: string;
  /** Only letters of this stage (`decode`, an operator or sink uid). */
  readonly stage?: string;
  /** Count what would be replayed, produce nothing. */
  readonly dryRun?: boolean;
  /** Give up reading after this long. @default 60000 */
  readonly timeoutMs?: number;
  readonly clientId?: string;
}

export interface ReplaySummary {
  readonly read: number;
  readonly matched: number;
  readonly replayed: number;
  /** Same source coordinates and stage as a letter already replayed in this run. */
  readonly duplicates: number;
  /** Value cut to fit the dead-letter topic: the original bytes are gone. */
  readonly truncated: number;
  /** No source topic recorded and no `to` given. */
  readonly withoutTarget: number;
  /** Per target topic, how many letters were (or, dry run, would be) produced. */
  readonly byTarget: Readonly<Record<string, number>>;
}

function header(message: KafkaMessage, name: string): string | undefined {
  const value = message.headers?.[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? String(value[0]) : String(value);
}

export async function replayDeadLetters(options: ReplayOptions): Promise<ReplaySummary> {
  const kafka = new Kafka({
    clientId: options.clientId ?? 'cdcflow-dead-letter-replay',
    brokers: [...options.brokers],
    logLevel: logLevel.WARN,
  });
  const letters = await readToEnd(kafka, options.from, options.timeoutMs ?? 60_000);
  const seen = new Set<string>();
  const out = new Map<string, { key: Buffer | null; value: Buffer | null }[]>();
  let matched = 0;
  let duplicates = 0;
  let truncated = 0;
  let withoutTarget = 0;
  for (const message of letters) {
    if (options.reason !== undefined && header(message, DLQ_HEADERS.errorKind) !== options.reason) continue;
    if (options.stage !== undefined && (header(message, DLQ_HEADERS.stage) ?? 'decode') !== options.stage) continue;
    matched++;
    const source = header(message, DLQ_HEADERS.topic) ?? '';
    const coordinates = [
      source,
      header(message, DLQ_HEADERS.partition),
      header(message, DLQ_HEADERS.offset),
      header(message, DLQ_HEADERS.stage),
    ].join('\u0000');
    if (source !== '' && seen.has(coordinates)) {
      duplicates++;
      continue;
    }
    seen.add(coordinates);
    if (
      header(message, DLQ_HEADERS.originalValueBytes) !== undefined ||
      header(message, DLQ_HEADERS.originalKeyBytes) !== undefined
    ) {
      truncated++;
      continue;
    }
    const target = options.to ?? source;
    if (target === '') {
      withoutTarget++;
      continue;
    }
    let list = out.get(target);
    if (list === undefined) out.set(target, (list = []));
    list.push({ key: message.key, value: message.value });
  }
  const byTarget = Object.fromEntries([...out].map(([topic, list]) => [topic, list.length]));
  let replayed = 0;
  if (options.dryRun !== true && out.size > 0) {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      for (const [topic, list] of out) {
        // One letter per send: letters can be as large as the topic allows, and order is kept.
        for (const message of list) {
          await producer.send({ topic, acks: -1, messages: [message] });
          replayed++;
        }
      }
    } finally {
      await producer.disconnect();
    }
  }
  return { read: letters.length, matched, replayed, duplicates, truncated, withoutTarget, byTarget };
}

/** Every letter of `topic` from its start to the end offsets it has when the read starts. */
async function readToEnd(kafka: Kafka, topic: string, timeoutMs: number): Promise<KafkaMessage[]> {
  const read = await readTopicToEnd(kafka, topic, {
    timeoutMs,
    groupPrefix: 'cdcflow-dlq-replay',
    onTimeout: () => `replay: read only part of ${topic} within ${timeoutMs} ms; raise timeoutMs`,
  });
  return read.map((r) => r.message);
}
