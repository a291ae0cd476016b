import type { RawMessage } from './raw-message.ts';

/**
 * Why a message could not be decoded. Each kind points at a different culprit:
 * - `undecodable`: the bytes are not UTF-8 / JSON / a valid Avro body for their schema;
 * - `truncated`: an Avro frame shorter than its header, or a body that ends early;
 * - `malformed`: it parsed, but is not a Debezium change event (missing `source`, `lsn`, ...);
 * - `unknown-op`: an `op` this decoder does not know (a newer Debezium?);
 * - `unknown-schema`: the registry does not know the frame's schema id (wrong registry?);
 * - `bad-magic-byte`: not the Confluent wire format (a JSON producer writing to an Avro topic?);
 * - `undecodable-value`: a change event whose column value cannot be decoded with certainty (a
 *   `precise` decimal with no known scale, text that is not a decimal); the reason names the column
 *   and what to configure.
 */
export type DeadLetterKind =
  | 'undecodable'
  | 'truncated'
  | 'malformed'
  | 'unknown-op'
  | 'unknown-schema'
  | 'bad-magic-byte'
  | 'undecodable-value';

/** A message a decoder rejected, with where it came from and why; processing continues. */
export interface DeadLetter {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly reason: string;
  readonly errorKind: DeadLetterKind;
  /** The original bytes, untouched, so the message can be replayed once the cause is fixed. */
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly timestampMs: number;
}

/** Header names on a dead-letter topic message, prefixed so they never clash with the producer's. */
export const DLQ_HEADERS = {
  topic: 'cdcflow.dlq.topic',
  partition: 'cdcflow.dlq.partition',
  offset: 'cdcflow.dlq.offset',
  reason: 'cdcflow.dlq.reason',
  errorKind: 'cdcflow.dlq.error-kind',
  timestampMs: 'cdcflow.dlq.timestamp-ms',
} as const;

export function deadLetter(message: RawMessage, errorKind: DeadLetterKind, reason: string): DeadLetter {
  return {
    topic: message.topic,
    partition: message.partition,
    offset: message.offset,
    reason,
    errorKind,
    key: message.key,
    value: message.value,
    timestampMs: message.timestampMs,
  };
}

export interface DeadLetterMessage {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * The message to produce to a dead-letter topic: the original key and value bytes, and where they
 * came from and why they were rejected in `cdcflow.dlq.*` headers.
 */
export function toDeadLetterMessage(letter: DeadLetter): DeadLetterMessage {
  return {
    key: letter.key,
    value: letter.value,
    headers: {
      [DLQ_HEADERS.topic]: letter.topic,
      [DLQ_HEADERS.partition]: String(letter.partition),
      [DLQ_HEADERS.offset]: letter.offset,
      [DLQ_HEADERS.reason]: letter.reason,
      [DLQ_HEADERS.errorKind]: letter.errorKind,
      [DLQ_HEADERS.timestampMs]: String(letter.timestampMs),
    },
  };
}
