import type { RawMessage } from './raw-message.ts';

/**
 * Why a record was dead-lettered. Each kind points at a different culprit:
 * - `undecodable`: the bytes are not UTF-8 / JSON / a valid Avro body for their schema;
 * - `truncated`: an Avro frame shorter than its header, or a body that ends early;
 * - `malformed`: it parsed, but is not a Debezium change event (missing `source`, `lsn`, ...);
 * - `unknown-op`: an `op` this decoder does not know (a newer Debezium?);
 * - `unknown-schema`: the registry does not know the frame's schema id (wrong registry?);
 * - `bad-magic-byte`: not the Confluent wire format (a JSON producer writing to an Avro topic?);
 * - `too-large`: the message is over the source's `maxRecordBytes` (checked before parsing);
 * - `too-deep`: a value nests deeper than the source's `maxNestingDepth`;
 * - `invalid-key`: null key, a key without the primary-key columns, or one the row images contradict;
 * - `invalid-position`: a negative or otherwise impossible position (LSN);
 * - `future-event-time`: `source.ts_ms` further ahead of the wall clock than `maxFutureSkewMs`;
 * - `user-code`: a map/filter/process function threw on the record;
 * - `unstorable`: keyed state cannot store the record's value;
 * - `sink-refused`: the sink's target refused the record (a type or constraint error);
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
  | 'too-large'
  | 'too-deep'
  | 'invalid-key'
  | 'invalid-position'
  | 'future-event-time'
  | 'user-code'
  | 'unstorable'
  | 'sink-refused'
  | 'undecodable-value';

/** The kinds a source's decoding stage can raise; their counters exist (at zero) from the start. */
export const DECODE_DEAD_LETTER_KINDS: readonly DeadLetterKind[] = [
  'undecodable',
  'truncated',
  'malformed',
  'unknown-op',
  'unknown-schema',
  'bad-magic-byte',
  'too-large',
  'too-deep',
  'invalid-key',
  'invalid-position',
  'future-event-time',
  'undecodable-value',
];

/** The stage of a letter rejected while decoding; other stages are the operator's or sink's uid. */
export const DECODE_STAGE = 'decode';

/** A record a stage rejected, with where it came from and why; processing continues. */
export interface DeadLetter {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly reason: string;
  readonly errorKind: DeadLetterKind;
  /** `decode`, or the uid of the operator or sink that refused the record. @default 'decode' */
  readonly stage?: string;
  /** The class of the error behind the rejection (`DecodeError` for decoding). @default 'DecodeError' */
  readonly errorClass?: string;
  /** The original bytes, untouched, so the message can be replayed once the cause is fixed. */
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** The source message's timestamp. */
  readonly timestampMs: number;
  /** When the letter was made. @default the time it is turned into a message */
  readonly deadLetteredAtMs?: number;
}

/** Header names on a dead-letter topic message, prefixed so they never clash with the producer's. */
export const DLQ_HEADERS = {
  topic: 'cdcflow.dlq.topic',
  partition: 'cdcflow.dlq.partition',
  offset: 'cdcflow.dlq.offset',
  key: 'cdcflow.dlq.key',
  stage: 'cdcflow.dlq.stage',
  reason: 'cdcflow.dlq.reason',
  errorKind: 'cdcflow.dlq.error-kind',
  errorClass: 'cdcflow.dlq.error-class',
  timestampMs: 'cdcflow.dlq.timestamp-ms',
  deadLetteredAtMs: 'cdcflow.dlq.dead-lettered-at-ms',
  /** Set when the value was cut to fit the dead-letter topic: the original value size in bytes. */
  originalValueBytes: 'cdcflow.dlq.original-value-bytes',
  /** Set when the key was cut to fit: the original key size in bytes. */
  originalKeyBytes: 'cdcflow.dlq.original-key-bytes',
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

/** Longest reason and key text kept in a header (a reason can quote a whole bad value). */
const MAX_HEADER_TEXT = 2000;

/**
 * The message to produce to a dead-letter topic: the original key and value bytes, and where they
 * came from, which stage refused them and why in `cdcflow.dlq.*` headers.
 */
export function toDeadLetterMessage(letter: DeadLetter, now: () => number = Date.now): DeadLetterMessage {
  return {
    key: letter.key,
    value: letter.value,
    headers: {
      [DLQ_HEADERS.topic]: letter.topic,
      [DLQ_HEADERS.partition]: String(letter.partition),
      [DLQ_HEADERS.offset]: letter.offset,
      [DLQ_HEADERS.key]: letter.key === null ? '' : letter.key.subarray(0, MAX_HEADER_TEXT).toString('utf8'),
      [DLQ_HEADERS.stage]: letter.stage ?? DECODE_STAGE,
      [DLQ_HEADERS.reason]: letter.reason.slice(0, MAX_HEADER_TEXT),
      [DLQ_HEADERS.errorKind]: letter.errorKind,
      [DLQ_HEADERS.errorClass]: letter.errorClass ?? 'DecodeError',
      [DLQ_HEADERS.timestampMs]: String(letter.timestampMs),
      [DLQ_HEADERS.deadLetteredAtMs]: String(letter.deadLetteredAtMs ?? now()),
    },
  };
}

/** The bytes a letter takes on the wire, roughly: key, value, headers and per-record overhead. */
export function deadLetterMessageBytes(message: DeadLetterMessage): number {
  let bytes = 64 + (message.key?.length ?? 0) + (message.value?.length ?? 0);
  for (const [name, value] of Object.entries(message.headers))
    bytes += 8 + Buffer.byteLength(name) + Buffer.byteLength(value);
  return bytes;
}

/**
 * Cuts a letter's value (then key) so the whole message fits `maxBytes`, recording the original
 * sizes in headers: a letter is never refused by the broker for its size.
 */
export function fitDeadLetterMessage(message: DeadLetterMessage, maxBytes: number): DeadLetterMessage {
  const size = deadLetterMessageBytes(message);
  if (size <= maxBytes) return message;
  const headers: Record<string, string> = { ...message.headers };
  let value = message.value;
  let key = message.key;
  if (value !== null) headers[DLQ_HEADERS.originalValueBytes] = String(value.length);
  if (key !== null && key.length > 1024) headers[DLQ_HEADERS.originalKeyBytes] = String(key.length);
  // Headers are small and bounded (MAX_HEADER_TEXT); what is left over goes to the key, then the value.
  const overhead = deadLetterMessageBytes({ key: null, value: null, headers });
  let budget = Math.max(0, maxBytes - overhead);
  if (key !== null && key.length > 1024) key = key.subarray(0, Math.min(1024, budget));
  budget -= key?.length ?? 0;
  if (value !== null) value = value.subarray(0, Math.max(0, budget));
  return { key, value, headers };
}
