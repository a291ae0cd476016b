import type { ChangeEvent } from '../../change-event.ts';
import type { DeadLetter } from './dead-letter.ts';
import type { TransactionMarker } from './transaction-marker.ts';

/**
 * One Kafka message as the consumer loop hands it to a decoder. Client-neutral on purpose: kafkajs
 * or any faster client maps its own message type to this.
 */
export interface RawMessage {
  readonly topic: string;
  readonly partition: number;
  /** Kafka offset as a decimal string (int64 does not fit a number). */
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly timestampMs: number;
  readonly headers?: Readonly<Record<string, Buffer | string | undefined>> | undefined;
}

/** Where a message was read from; carried on every decoded result so offsets can advance. */
export interface MessageOrigin {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/** A decoded primary key (`{"id": 42}`), or null when the message had no key. */
export type DecodedKey = Readonly<Record<string, unknown>> | null;

/**
 * What a decoder makes of one message. Decoders never throw for bad input: anything they cannot
 * turn into a change, tombstone, heartbeat or transaction marker becomes a dead letter.
 */
export type Decoded<Row> =
  | { readonly kind: 'change'; readonly event: ChangeEvent<Row> }
  | { readonly kind: 'tombstone'; readonly key: DecodedKey; readonly origin: MessageOrigin }
  | { readonly kind: 'heartbeat'; readonly tsMs: number | null; readonly origin: MessageOrigin }
  | { readonly kind: 'transaction'; readonly marker: TransactionMarker; readonly origin: MessageOrigin }
  | { readonly kind: 'dead-letter'; readonly letter: DeadLetter };

/** A row as a Debezium decoder returns it when the caller does not name a row type. */
export type JsonRow = Readonly<Record<string, unknown>>;

export function originOf(message: RawMessage): MessageOrigin {
  return { topic: message.topic, partition: message.partition, offset: message.offset };
}
