import { snapshotPosition, streamPosition } from '../../../state/index.ts';
import type { ChangeEvent, ChangeOp, ChangePosition, SourceInfo, TransactionInfo } from '../../change-event.ts';
import type { DeadLetterKind } from './dead-letter.ts';
import type { DecodedKey, MessageOrigin } from './raw-message.ts';

/**
 * Normalises Debezium's change envelope (`before`, `after`, `source`, `op`, `ts_ms`) into a
 * `ChangeEvent`, whichever converter (JSON or Avro) produced the object. Shared so that both
 * formats reject exactly the same things with exactly the same reasons.
 */
export type EnvelopeResult<Row> =
  | { readonly ok: true; readonly event: ChangeEvent<Row> }
  | { readonly ok: false; readonly kind: DeadLetterKind; readonly reason: string };

type Obj = Readonly<Record<string, unknown>>;

const OPS: ReadonlySet<string> = new Set<ChangeOp>(['c', 'u', 'd', 'r', 't']);
const DIGITS = /^\d+$/;

export function isPlainObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Debezium heartbeats carry only `ts_ms` (and, with Avro, possibly nothing else at all). */
export function isHeartbeatValue(value: Obj): boolean {
  let fields = 0;
  for (const name in value) {
    if (name !== 'ts_ms') return false;
    fields += 1;
  }
  return fields === 1;
}

function fail(kind: DeadLetterKind, reason: string): { ok: false; kind: DeadLetterKind; reason: string } {
  return { ok: false, kind, reason };
}

/** Accepts a JSON number or a decimal string (Debezium writes int64 as either) within 2^53. */
export function toSafeInteger(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === 'bigint')
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= 0n ? Number(value) : undefined;
  if (typeof value === 'string' && DIGITS.test(value)) {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
}

function rowOf(value: unknown): Obj | null | undefined {
  if (value === null || value === undefined) return null;
  return isPlainObject(value) ? value : undefined;
}

function snapshotOf(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return null;
}

/** `source.sequence`: a JSON string `["<last commit LSN>","<change LSN>"]`, either may be null. */
const SEQUENCE = /^\[\s*(?:null|"(\d{1,20})")\s*,\s*(?:null|"(\d{1,20})")\s*\]$/;

/**
 * Commit-order position (state/change-position.ts): from `source.sequence` when the connector
 * sends it (Debezium's Postgres connector always does), else from `source.lsn` alone.
 */
function positionOf(
  op: string,
  sequence: unknown,
  lsn: number | undefined,
): { readonly position: ChangePosition } | { readonly error: string } {
  let commit: string | null = null;
  let change: string | number | undefined = lsn;
  if (sequence !== undefined && sequence !== null) {
    const match = typeof sequence === 'string' ? SEQUENCE.exec(sequence) : null;
    if (match === null)
      return { error: `\`source.sequence\` ${JSON.stringify(sequence)} is not ["<last commit LSN>","<change LSN>"]` };
    commit = match[1] ?? null;
    change = match[2] ?? lsn;
  }
  if (change === undefined)
    return { error: 'missing `source.lsn`: cdcflow needs the LSN to order and deduplicate changes' };
  try {
    return { position: op === 'r' ? snapshotPosition(commit, change) : streamPosition(commit, change) };
  } catch {
    return { error: `\`source.sequence\` ${JSON.stringify(sequence)} holds an LSN beyond 64 bits` };
  }
}

function parseSource(op: string, source: unknown): SourceInfo | string {
  if (!isPlainObject(source)) return 'missing `source` block: not a Debezium change event';
  let lsn = toSafeInteger(source['lsn']);
  const hasSequence = source['sequence'] !== undefined && source['sequence'] !== null;
  if (
    lsn === undefined &&
    (!hasSequence || (source['lsn'] !== undefined && source['lsn'] !== null && typeof source['lsn'] !== 'number'))
  ) {
    return source['lsn'] === undefined || source['lsn'] === null
      ? 'missing `source.lsn`: cdcflow needs the LSN to order and deduplicate changes'
      : `\`source.lsn\` ${JSON.stringify(source['lsn'])} is not a non-negative integer below 2^53`;
  }
  const ordered = positionOf(op, source['sequence'], lsn);
  if ('error' in ordered) return ordered.error;
  const position = ordered.position;
  // Above 2^53 JSON has already rounded source.lsn; the position (from the sequence strings) is exact.
  lsn ??= Number(BigInt(`0x${position.slice(19)}`));
  const tsMs = toSafeInteger(source['ts_ms']);
  if (tsMs === undefined) return 'missing or non-integer `source.ts_ms` (the commit time, used as event time)';
  const { db, schema, table } = source;
  if (typeof db !== 'string' || typeof schema !== 'string' || typeof table !== 'string') {
    return '`source.db`, `source.schema` and `source.table` must be strings';
  }
  const txId = toSafeInteger(source['txId']) ?? null;
  return { db, schema, table, lsn, position, txId, tsMs, snapshot: snapshotOf(source['snapshot']) };
}

/** Checks that the row images fit the op: c/u/r need `after`, d must not have one, t has none. */
function imagesFor(op: ChangeOp, before: unknown, after: unknown): { before: Obj | null; after: Obj | null } | string {
  if (op === 't') return { before: null, after: null };
  const b = rowOf(before);
  const a = rowOf(after);
  if (b === undefined) return '`before` must be an object or null';
  if (a === undefined) return '`after` must be an object or null';
  if (op === 'd') return a === null ? { before: b, after: null } : 'a delete (op d) must not carry an `after` image';
  return a === null ? `\`after\` missing for op ${op}` : { before: b, after: a };
}

/**
 * The row type is the caller's claim: the envelope is checked, the columns are not (checking every
 * column of every event would cost more than the rest of decoding together).
 */
export function normaliseEnvelope<Row>(value: Obj, key: DecodedKey, origin: MessageOrigin): EnvelopeResult<Row> {
  const op = value['op'];
  if (op === undefined || op === null) return fail('malformed', 'no `op` field: not a Debezium change event');
  if (typeof op !== 'string' || !OPS.has(op)) {
    return fail('unknown-op', `unknown op ${JSON.stringify(op)} (expected one of c, u, d, r, t)`);
  }
  const source = parseSource(op, value['source']);
  if (typeof source === 'string') return fail('malformed', source);
  const images = imagesFor(op as ChangeOp, value['before'], value['after']);
  if (typeof images === 'string') return fail('malformed', images);
  // Debezium's schema marks the envelope's ts_ms optional; the commit time is the best stand-in.
  const tsMs = toSafeInteger(value['ts_ms']) ?? source.tsMs;
  const transaction = transactionOf(value['transaction']);
  const event: ChangeEvent<Row> = {
    op: op as ChangeOp,
    before: images.before as Row | null,
    after: images.after as Row | null,
    source,
    tsMs,
    key,
    origin,
    ...(transaction === undefined ? {} : { transaction }),
  };
  return { ok: true, event };
}

/** The `transaction` block when it is complete; anything else reads as absent (it is optional). */
function transactionOf(block: unknown): TransactionInfo | undefined {
  if (!isPlainObject(block) || typeof block['id'] !== 'string') return undefined;
  const totalOrder = toSafeInteger(block['total_order']);
  const dataCollectionOrder = toSafeInteger(block['data_collection_order']);
  if (totalOrder === undefined || dataCollectionOrder === undefined) return undefined;
  return { id: block['id'], totalOrder, dataCollectionOrder };
}
