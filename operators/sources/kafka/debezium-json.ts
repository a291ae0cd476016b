import { isUtf8 } from 'node:buffer';
import { deadLetter } from './dead-letter.ts';
import { DecimalColumns, decodeDecimalColumns, rowStructOf } from './debezium-decimals.ts';
import { isHeartbeatValue, isPlainObject, normaliseEnvelope, toSafeInteger } from './debezium-envelope.ts';
import { originOf } from './raw-message.ts';
import type { Decoded, DecodedKey, JsonRow, RawMessage } from './raw-message.ts';
import { transactionMarkerOf } from './transaction-marker.ts';

/** Options of {@link decodeDebeziumJson}. */
export interface DebeziumJsonOptions {
  /**
   * Topics whose messages are Debezium heartbeats, whatever their value.
   * @default /^__debezium-heartbeat\./ (Debezium's default `topic.heartbeat.prefix`)
   */
  readonly heartbeatTopic?: RegExp;
  /**
   * How NUMERIC/DECIMAL columns are decoded (see debezium-decimals.ts). Columns the message's
   * schema marks as decimals are always decoded; configuration is needed without schemas.
   * @default new DecimalColumns() (schema-described columns only)
   */
  readonly decimals?: DecimalColumns;
}

const NO_DECIMAL_CONFIG = new DecimalColumns();

export const DEFAULT_HEARTBEAT_TOPIC = /^__debezium-heartbeat\./;

type JsonParse = { ok: true; value: unknown; schema?: unknown } | { ok: false; reason: string };

/**
 * Bytes → JSON value, with `{schema, payload}` (converter `schemas.enable=true`) unwrapped; the
 * schema is kept: it is the only place the scale of a `precise` decimal is written.
 */
export function parseJsonBytes(bytes: Buffer, what: 'key' | 'value'): JsonParse {
  if (!isUtf8(bytes)) return { ok: false, reason: `${what} is not valid UTF-8 (${bytes.length} bytes)` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    return { ok: false, reason: `${what} is not JSON: ${(error as Error).message}` };
  }
  if (isPlainObject(parsed) && 'payload' in parsed && 'schema' in parsed)
    return { ok: true, value: parsed['payload'], schema: parsed['schema'] };
  return { ok: true, value: parsed };
}

export type KeyParse = { ok: true; key: DecodedKey; schema?: unknown } | { ok: false; reason: string };

/** Decodes a JSON message key (`{"id": 42}`, enveloped or not); a missing key decodes to null. */
export function decodeJsonKey(bytes: Buffer | null): KeyParse {
  if (bytes === null || bytes.length === 0) return { ok: true, key: null };
  const parsed = parseJsonBytes(bytes, 'key');
  if (!parsed.ok) return parsed;
  if (parsed.value === null) return { ok: true, key: null };
  if (!isPlainObject(parsed.value)) return { ok: false, reason: 'key is JSON but not an object like {"id": 42}' };
  return parsed.schema === undefined
    ? { ok: true, key: parsed.value }
    : { ok: true, key: parsed.value, schema: parsed.schema };
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
export function decodeDebeziumJson<Row = JsonRow>(
  message: RawMessage,
  options: DebeziumJsonOptions = {},
): Decoded<Row> {
  if ((options.heartbeatTopic ?? DEFAULT_HEARTBEAT_TOPIC).test(message.topic)) return heartbeatFromTopic(message);
  const key = decodeJsonKey(message.key);
  if (!key.ok) return { kind: 'dead-letter', letter: deadLetter(message, 'undecodable', key.reason) };
  if (message.value === null) return { kind: 'tombstone', key: key.key, origin: originOf(message) };
  const parsed = parseJsonBytes(message.value, 'value');
  if (!parsed.ok) return { kind: 'dead-letter', letter: deadLetter(message, 'undecodable', parsed.reason) };
  const decimals: DecimalDecoding = {
    columns: options.decimals ?? NO_DECIMAL_CONFIG,
    valueSchema: parsed.schema,
    keySchema: key.schema,
    schemaless: parsed.schema === undefined,
  };
  return decodeEnvelopeValue<Row>(message, key.key, parsed.value, decimals);
}

/**
 * What the envelope tail needs to decode decimal columns: the compiled settings and the message's
 * Connect schemas (JSON with schemas). `schemaless: false` with no schemas means the format's own
 * decoder already did it (Avro's `decimal` logical type); then only self-describing
 * VariableScaleDecimal structs are left.
 */
export interface DecimalDecoding {
  readonly columns: DecimalColumns;
  readonly valueSchema?: unknown;
  readonly keySchema?: unknown;
  readonly schemaless: boolean;
}

const AVRO_DECIMALS: DecimalDecoding = { columns: NO_DECIMAL_CONFIG, schemaless: false };

/** The format-independent tail of decoding: an already parsed value → change/heartbeat/transaction/dead letter. */
export function decodeEnvelopeValue<Row>(
  message: RawMessage,
  key: DecodedKey,
  value: unknown,
  decimals: DecimalDecoding = AVRO_DECIMALS,
): Decoded<Row> {
  if (value === null) return { kind: 'tombstone', key, origin: originOf(message) };
  if (!isPlainObject(value)) {
    const type = Array.isArray(value) ? 'an array' : typeof value;
    return { kind: 'dead-letter', letter: deadLetter(message, 'malformed', `value is ${type}, not an object`) };
  }
  if (isHeartbeatValue(value)) return heartbeat(message, value);
  const marker = transactionMarkerOf(value);
  if (typeof marker === 'string') return { kind: 'dead-letter', letter: deadLetter(message, 'malformed', marker) };
  if (marker !== undefined) return { kind: 'transaction', marker, origin: originOf(message) };
  const result = normaliseEnvelope<Row>(value, key, originOf(message));
  if (!result.ok) return { kind: 'dead-letter', letter: deadLetter(message, result.kind, result.reason) };
  const failure = decodeDecimals(result.event, decimals);
  if (failure !== undefined) return { kind: 'dead-letter', letter: deadLetter(message, 'undecodable-value', failure) };
  return { kind: 'change', event: result.event };
}

/** Rewrites the event's decimal columns (rows and key, freshly parsed, so in place) to decimal text. */
function decodeDecimals(
  event: {
    readonly before: unknown;
    readonly after: unknown;
    readonly key: DecodedKey;
    readonly source: { readonly schema: string; readonly table: string };
  },
  decimals: DecimalDecoding,
): string | undefined {
  const { schema, table } = event.source;
  const where = `${schema}.${table}`;
  const { columns } = decimals;
  const rowPlan =
    decimals.valueSchema !== undefined
      ? columns.fromConnectSchema(rowStructOf(decimals.valueSchema), schema, table)
      : decimals.schemaless
        ? columns.configured(schema, table)
        : [];
  for (const row of [event.before, event.after]) {
    if (row === null || typeof row !== 'object') continue;
    const failure = decodeDecimalColumns(row as Record<string, unknown>, rowPlan, where);
    if (failure !== undefined) return failure;
  }
  if (event.key === null) return undefined;
  const keyPlan =
    decimals.keySchema !== undefined ? columns.fromConnectSchema(decimals.keySchema, schema, table) : rowPlan;
  const failure = decodeDecimalColumns(event.key as Record<string, unknown>, keyPlan, where);
  return failure === undefined ? undefined : `key: ${failure}`;
}
