/**
 * Where documents Elasticsearch refuses (mapping errors, ...) go: a Kafka topic, one message per
 * document, the document as the value and why it was refused in `cdcflow.dlq.*` headers.
 * At-least-once: a replay may repeat a letter.
 */
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { kafkajsLogCreator, rootLogger } from '../../logger.ts';

export interface RejectedDocument {
  readonly kind: 'index' | 'delete';
  readonly index: string;
  readonly id: string;
  readonly version: number;
  readonly document: unknown;
  readonly status: number;
  readonly errorType: string;
  readonly reason: string;
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

export function kafkaDocumentDeadLetters(options: { brokers: readonly string[]; topic: string; clientId?: string }): DocumentDeadLetterWriter {
  let producer: Producer | undefined;
  const connect = async (): Promise<Producer> => {
    if (producer !== undefined) return producer;
    const kafka = new Kafka({ clientId: options.clientId ?? 'cdcflow-es-dead-letters', brokers: [...options.brokers], logLevel: logLevel.WARN, logCreator: kafkajsLogCreator(rootLogger()) });
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
      await connected.send({
        topic: options.topic,
        acks: -1,
        messages: rejected.map((r) => ({
          key: r.id,
          value: r.kind === 'delete' ? null : JSON.stringify(r.document),
          headers: {
            [DOCUMENT_DLQ_HEADERS.index]: r.index,
            [DOCUMENT_DLQ_HEADERS.id]: r.id,
            [DOCUMENT_DLQ_HEADERS.version]: String(r.version),
            [DOCUMENT_DLQ_HEADERS.action]: r.kind,
            [DOCUMENT_DLQ_HEADERS.status]: String(r.status),
            [DOCUMENT_DLQ_HEADERS.errorType]: r.errorType,
            [DOCUMENT_DLQ_HEADERS.reason]: r.reason.slice(0, 2000),
          },
        })),
      });
    },
    async close() {
      await producer?.disconnect();
      producer = undefined;
    },
  };
}
