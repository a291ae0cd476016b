/**
 * Where documents Elasticsearch refuses (mapping errors, ...) go: a Kafka topic, one message per
 * document, the document as the value and why it was refused in `cdcflow.dlq.*` headers — the same
 * headers every dead letter carries (source topic/partition/offset where known, key, stage = the
 * sink's uid, reason, error kind `sink-refused`, error class = Elasticsearch's error type, time),
 * plus the document's index, id, version, action and status. Sends stay under the topic's limit
 * and an oversized document is truncated with its size recorded, as for every dead letter.
 * At-least-once: a replay may repeat a letter.
 */
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { kafkaClientConfig, resolveKafkaConnection, type KafkaConnectionOptions } from '../../kafka-connection.ts';
import { DLQ_HEADERS, fitDeadLetterMessage, type DeadLetterMessage } from '../../sources/kafka/dead-letter.ts';
import { KAFKA_DEFAULT_MAX_MESSAGE_BYTES, chunksUnder } from '../../sources/kafka/dead-letter-writer.ts';

export interface RejectedDocument {
  readonly kind: 'index' | 'delete';
  readonly index: string;
  readonly id: string;
  readonly version: number;
  readonly document: unknown;
  readonly status: number;
  readonly errorType: string;
  readonly reason: string;
  /** Where the change behind the document was read, when known. */
  readonly origin?: { readonly topic: string; readonly partition: number; readonly offset: string };
}

export interface DocumentDeadLetterWriter {
  write(rejected: readonly RejectedDocument[]): Promise<void>;
  close(): Promise<void>;
}

export const DOCUMENT_DLQ_HEADERS = {
  index: 'cdcflow.dlq.index',
  id: 'cdcflow.dlq.id',
  version: 'cdcflow.dlq.version',
  action: 'cdcflow.dlq.action',
  status: 'cdcflow.dlq.status',
  errorType: 'cdcflow.dlq.error-type',
  reason: 'cdcflow.dlq.reason',
} as const;

export function kafkaDocumentDeadLetters(
  options: KafkaConnectionOptions & { brokers: readonly string[]; topic: string; clientId?: string; stage?: string },
): DocumentDeadLetterWriter {
  let producer: Producer | undefined;
  const connect = async (): Promise<Producer> => {
    if (producer !== undefined) return producer;
    const kafka = new Kafka(
      kafkaClientConfig(resolveKafkaConnection(options), {
        clientId: options.clientId ?? 'cdcflow-es-dead-letters',
        logLevel: logLevel.WARN,
      }),
    );
    const created = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: true });
    await created.connect();
    producer = created;
    return created;
  };
  return {
    async write(rejected) {
      if (rejected.length === 0) return;
      // Connect lazily: a healthy index never needs the dead-letter producer.
      const connected = await connect();
      const now = Date.now();
      const messages = rejected.map((r) =>
        fitDeadLetterMessage(documentLetter(r, options.stage ?? 'elasticsearch', now), MAX_LETTER_BYTES),
      );
      for (const chunk of chunksUnder(messages, MAX_LETTER_BYTES)) {
        await connected.send({
          topic: options.topic,
          acks: -1,
          messages: chunk.map((m) => ({ key: m.key, value: m.value, headers: { ...m.headers } })),
        });
      }
    },
    async close() {
      await producer?.disconnect();
      producer = undefined;
    },
  };
}

/** The broker default limit, less room for the batch framing: the document topic is created by auto-creation. */
const MAX_LETTER_BYTES = KAFKA_DEFAULT_MAX_MESSAGE_BYTES - 1024;

function documentLetter(r: RejectedDocument, stage: string, now: number): DeadLetterMessage {
  return {
    key: Buffer.from(r.id, 'utf8'),
    value: r.kind === 'delete' ? null : Buffer.from(JSON.stringify(r.document), 'utf8'),
    headers: {
      [DLQ_HEADERS.topic]: r.origin?.topic ?? '',
      [DLQ_HEADERS.partition]: r.origin === undefined ? '-1' : String(r.origin.partition),
      [DLQ_HEADERS.offset]: r.origin?.offset ?? '',
      [DLQ_HEADERS.key]: r.id,
      [DLQ_HEADERS.stage]: stage,
      [DLQ_HEADERS.errorKind]: 'sink-refused',
      [DLQ_HEADERS.errorClass]: r.errorType,
      [DLQ_HEADERS.timestampMs]: String(now),
      [DLQ_HEADERS.deadLetteredAtMs]: String(now),
      [DOCUMENT_DLQ_HEADERS.index]: r.index,
      [DOCUMENT_DLQ_HEADERS.id]: r.id,
      [DOCUMENT_DLQ_HEADERS.version]: String(r.version),
      [DOCUMENT_DLQ_HEADERS.action]: r.kind,
      [DOCUMENT_DLQ_HEADERS.status]: String(r.status),
      [DOCUMENT_DLQ_HEADERS.errorType]: r.errorType,
      [DOCUMENT_DLQ_HEADERS.reason]: r.reason.slice(0, 2000),
    },
  };
}
