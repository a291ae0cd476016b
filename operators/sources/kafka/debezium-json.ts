import { isUtf8 } from 'node:buffer';
import { deadLetter } from './dead-letter.ts';
import { isHeartbeatValue, isPlainObject, normaliseEnvelope, toSafeInteger } from './debezium-envelope.ts';
import { originOf } from './raw-message.ts';
import type { Decoded, DecodedKey, JsonRow, RawMessage } from './raw-message.ts';

/** Options of {@link decodeDebeziumJson}. */
export interface DebeziumJsonOptions {
  /**
   * Topics whose messages are Debezium heartbeats, whatever their value.
   * @default /^__debezium-heartbeat\./ (Debezium's default `topic.heartbeat.prefix`)
   */
  readonly heartbeatTopic?: RegExp;
}

export const DEFAULT_HEARTBEAT_TOPIC = /^__debezium-heartbeat\./;

type JsonParse = { ok: true; value: unknown } | { ok: false; reason: string };

/** Bytes → JSON value, with `{schema, payload}` (converter `schemas.enable=true`) unwrapped. */
export function parseJsonBytes(bytes: Buffer, what: 'key' | 'value'): JsonParse {
  if (!isUtf8(bytes)) return { ok: false, reason: `${what} is not valid UTF-8 (${bytes.length} bytes)` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    return { ok: false, reason: `${what} is not JSON: ${(error as Error).message}` };
  }
  if (isPlainObject(parsed) && 'payload' in parsed && 'schema' in parsed) return { ok: true, value: parsed['payload'] };
  return { ok: true, value: parsed };
}

export type KeyParse = { ok: true; key: DecodedKey } | { ok: false; reason: string };

/** Decodes a JSON message key (`{"id": 42}`, enveloped or not); a missing key decodes to null. */
export function decodeJsonKey(bytes: Buffer | null): KeyParse {
  if (bytes === null || bytes.length === 0) return { ok: true, key: null };
  const parsed = parseJsonBytes(bytes, 'key');
  if (!parsed.ok) return parsed;
  if (parsed.value === null) return { ok: true, key: null };
  if (!isPlainObject(parsed.value)) return { ok: false, reason: 'key is JSON but not an object like {"id": 42}' };
  return { ok: true, key: parsed.value };
}

function heartbeat<Row>(message: RawMessage, value: unknown): Decoded<Row> {
  const tsMs = isPlainObject(value) ? (toSafeInteger(value['ts_ms']) ?? null) : null;
  return { kind: 'heartbeat', tsMs, origin: originOf(message) };
}

function heartbeatFromTopic<Row>(message: RawMessage): Decoded<Row> {
  const parsed = message.value === null ? undefined : parseJsonBytes(message.value, 'value');
  return heartbeat(message, parsed?.ok === true ? parsed.value : undefined);
}

/**
 * Decodes one message written by Debezium's JSON converter, with or without schemas. Never throws
 * for bad input: undecodable or non-Debezium messages come back as `dead-letter`.
 *
 * @example
 * const decoded = decodeDebeziumJson<OrderRow>(message);
 * if (decoded.kind === 'change') emit(decoded.event);
 */
export function decodeDebeziumJson<Row = JsonRow>(message: RawMessage, options: DebeziumJsonOptions = {}): Decoded<Row> {
  if ((options.heartbeatTopic ?? DEFAULT_HEARTBEAT_TOPIC).test(message.topic)) return heartbeatFromTopic(message);
  const key = decodeJsonKey(message.key);
  if (!key.ok) return { kind: 'dead-letter', letter: deadLetter(message, 'undecodable', key.reason) };
  if (message.value === null) return { kind: 'tombstone', key: key.key, origin: originOf(message) };
  const parsed = parseJsonBytes(message.value, 'value');
  if (!parsed.ok) return { kind: 'dead-letter', letter: deadLetter(message, 'undecodable', parsed.reason) };
  return decodeEnvelopeValue<Row>(message, key.key, parsed.value);
}

/** The format-independent tail of decoding: an already parsed value → change/heartbeat/dead letter. */
export function decodeEnvelopeValue<Row>(message: RawMessage, key: DecodedKey, value: unknown): Decoded<Row> {
  if (value === null) return { kind: 'tombstone', key, origin: originOf(message) };
  if (!isPlainObject(value)) {
    const type = Array.isArray(value) ? 'an array' : typeof value;
    return { kind: 'dead-letter', letter: deadLetter(message, 'malformed', `value is ${type}, not an object`) };
  }
  if (isHeartbeatValue(value)) return heartbeat(message, value);
  const result = normaliseEnvelope<Row>(value, key, originOf(message));
  if (result.ok) return { kind: 'change', event: result.event };
  return { kind: 'dead-letter', letter: deadLetter(message, result.kind, result.reason) };
}
