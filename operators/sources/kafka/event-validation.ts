/**
 * What a source checks beyond "is this a Debezium envelope" (debezium-envelope.ts): limits that
 * protect the job (record size, nesting depth, checked on the raw bytes before parsing) and the
 * invariants every later stage relies on (a key that identifies the row, a position that can
 * order it, an event time that cannot drag watermarks into the future). A record that fails goes
 * to the dead-letter topic with a precise reason instead of crashing a later stage or silently
 * corrupting state (a null key upserts every such row onto one key).
 */
import type { ChangeEvent } from '../../change-event.ts';
import type { DeadLetterKind } from './dead-letter.ts';
import type { RawMessage } from './raw-message.ts';

export interface RecordChecks {
  /**
   * Largest key + value a record may have, in bytes, checked before parsing: parsing a 50 MB value
   * takes ~5× its size in memory. Larger records are dead-lettered (truncated to fit the
   * dead-letter topic, original size in a header). @default 8 MiB
   */
  readonly maxRecordBytes?: number;
  /**
   * Deepest nesting of objects and arrays in a key or value. Deeper values would overflow the
   * stack of whatever recurses over them later (serialisers, state codecs). @default 64
   */
  readonly maxNestingDepth?: number;
  /**
   * How far `source.ts_ms` may be ahead of this machine's clock. Event time is the watermark's
   * input: one event from the year 3000 would close every window up to it. @default 3600000 (1 h)
   */
  readonly maxFutureSkewMs?: number;
  /**
   * Primary-key columns every key must carry (non-null). @default the key's own columns (at least one)
   */
  readonly keyColumns?: readonly string[];
  /**
   * Whether a change must have a key. Debezium writes a null key for tables without a primary
   * key; such tables need `false` (and a keyBy on something else). @default true
   */
  readonly requireKey?: boolean;
}

export type ResolvedRecordChecks = Required<Omit<RecordChecks, 'keyColumns'>> & {
  readonly keyColumns: readonly string[] | undefined;
};

export const DEFAULT_MAX_RECORD_BYTES = 8 * 1024 * 1024;
export const DEFAULT_MAX_NESTING_DEPTH = 64;
export const DEFAULT_MAX_FUTURE_SKEW_MS = 3_600_000;

export interface RecordProblem {
  readonly kind: DeadLetterKind;
  readonly reason: string;
}

export function resolveRecordChecks(checks: RecordChecks = {}): ResolvedRecordChecks {
  const resolved = {
    maxRecordBytes: checks.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES,
    maxNestingDepth: checks.maxNestingDepth ?? DEFAULT_MAX_NESTING_DEPTH,
    maxFutureSkewMs: checks.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS,
    keyColumns: checks.keyColumns,
    requireKey: checks.requireKey ?? true,
  };
  for (const name of ['maxRecordBytes', 'maxNestingDepth', 'maxFutureSkewMs'] as const) {
    const value = resolved[name];
    if (!(value > 0)) throw new RangeError(`debeziumSource: ${name} must be > 0, got ${value}`);
  }
  return resolved;
}

/** Size, then (for JSON) nesting depth on the raw bytes: both before anything is parsed. */
export function checkRawMessage(
  message: RawMessage,
  checks: ResolvedRecordChecks,
  json: boolean,
): RecordProblem | undefined {
  const bytes = (message.key?.length ?? 0) + (message.value?.length ?? 0);
  if (bytes > checks.maxRecordBytes) {
    return {
      kind: 'too-large',
      reason: `record is ${bytes} bytes (key + value), over maxRecordBytes ${checks.maxRecordBytes}: raise the source's maxRecordBytes if such records are expected`,
    };
  }
  if (!json) return undefined;
  for (const [what, part] of [
    ['key', message.key],
    ['value', message.value],
  ] as const) {
    if (part === null) continue;
    if (jsonDepthOver(part, checks.maxNestingDepth))
      return {
        kind: 'too-deep',
        reason: `${what} nests objects/arrays deeper than maxNestingDepth ${checks.maxNestingDepth}`,
      };
  }
  return undefined;
}

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * True when JSON bytes nest deeper than `max`, scanning without recursion (brackets inside
 * strings do not count). Invalid JSON is left to the parser to reject.
 */
export function jsonDepthOver(bytes: Uint8Array, max: number): boolean {
  // A value shorter than `max` brackets cannot nest that deep: skip the scan for most records.
  if (bytes.length <= max) return false;
  // Nor can one with at most `max` opening brackets in all (inside strings or not): counted with
  // the native byte search, a few hops per Debezium event instead of a JS loop over every byte.
  if (openBracketsAtMost(bytes, max)) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      if (++depth > max) return true;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) depth--;
  }
  return false;
}

/** Nesting depth of a decoded value over `max` (for formats not checked on their bytes), without recursion. */
export function valueDepthOver(value: unknown, max: number): boolean {
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const top = stack.pop() as { value: unknown; depth: number };
    if (typeof top.value !== 'object' || top.value === null || Buffer.isBuffer(top.value)) continue;
    const depth = top.depth + 1;
    if (depth > max) return true;
    for (const child of Object.values(top.value))
      if (typeof child === 'object' && child !== null) stack.push({ value: child, depth });
  }
  return false;
}

/** Key, position and event time of a decoded change; `now` is this machine's clock. */
export function validateChangeEvent(
  event: ChangeEvent<unknown>,
  checks: ResolvedRecordChecks,
  now: number,
  json: boolean,
): RecordProblem | undefined {
  return (
    checkPosition(event) ??
    checkEventTime(event, checks, now) ??
    checkKey(event, checks) ??
    (json ? undefined : checkDepth(event, checks))
  );
}

function checkPosition(event: ChangeEvent<unknown>): RecordProblem | undefined {
  const source = event.source as unknown as Readonly<Record<string, unknown>>;
  const lsn = source['lsn'];
  if (typeof lsn === 'number' && !(lsn >= 0))
    return {
      kind: 'invalid-position',
      reason: `\`source.lsn\` ${lsn} is negative: a position must be a non-negative integer`,
    };
  // Commit-order positions ([last commit LSN, change LSN]) where the decoder provides them.
  const sequence = source['sequence'];
  if (Array.isArray(sequence)) {
    for (const part of sequence as unknown[]) {
      if ((typeof part === 'number' || typeof part === 'bigint') && part < 0) {
        return {
          kind: 'invalid-position',
          reason: `\`source.sequence\` ${JSON.stringify(sequence.map(String))} has a negative part: positions must be non-negative`,
        };
      }
    }
  }
  return undefined;
}

function checkEventTime(
  event: ChangeEvent<unknown>,
  checks: ResolvedRecordChecks,
  now: number,
): RecordProblem | undefined {
  const ahead = event.source.tsMs - now;
  if (ahead <= checks.maxFutureSkewMs) return undefined;
  return {
    kind: 'future-event-time',
    reason: `\`source.ts_ms\` ${event.source.tsMs} (${isoOrRaw(event.source.tsMs)}) is ${ahead} ms ahead of this machine's clock, over maxFutureSkewMs ${checks.maxFutureSkewMs}: it would move watermarks into the future`,
  };
}

function isoOrRaw(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
}

function checkKey(event: ChangeEvent<unknown>, checks: ResolvedRecordChecks): RecordProblem | undefined {
  if (event.op === 't') return undefined;
  const key = event.key;
  if (key === null) {
    return checks.requireKey
      ? {
          kind: 'invalid-key',
          reason: `op ${event.op} has a null key: changes need their primary key as the Kafka key (set requireKey: false for tables without one)`,
        }
      : undefined;
  }
  const columns = checks.keyColumns ?? Object.keys(key);
  if (columns.length === 0)
    return { kind: 'invalid-key', reason: 'the key is an empty object: it names no primary-key column' };
  for (const column of columns) {
    const value = key[column];
    if (value === undefined || value === null) {
      return {
        kind: 'invalid-key',
        reason: `the key ${abbreviate(key)} has no value for primary-key column \`${column}\``,
      };
    }
  }
  for (const [image, row] of [
    ['after', event.after],
    ['before', event.before],
  ] as const) {
    if (row === null || typeof row !== 'object') continue;
    const values = row as Readonly<Record<string, unknown>>;
    for (const column of columns) {
      // Debezium's key columns are columns of the row: a key naming another column is not its key.
      if (!(column in values))
        return {
          kind: 'invalid-key',
          reason: `the key ${abbreviate(key)} names \`${column}\`, which is not a column of \`${image}\`: it is not this row's primary key`,
        };
      if (!sameKeyValue(key[column], values[column])) {
        return {
          kind: 'invalid-key',
          reason: `the key's \`${column}\` ${abbreviate(key[column])} disagrees with \`${image}.${column}\` ${abbreviate(values[column])}: the change would bypass the replay guard of its real key`,
        };
      }
    }
  }
  return undefined;
}

/** Key and row columns compare by value: 42, 42n and "42" (an int64 written as a string) are one key. */
function sameKeyValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const scalar = (v: unknown): v is string | number | bigint | boolean =>
    ['string', 'number', 'bigint', 'boolean'].includes(typeof v);
  if (scalar(a) && scalar(b)) return String(a) === String(b);
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return false;
  }
}

function checkDepth(event: ChangeEvent<unknown>, checks: ResolvedRecordChecks): RecordProblem | undefined {
  for (const [what, part] of [
    ['key', event.key],
    ['before', event.before],
    ['after', event.after],
  ] as const) {
    // +1: the row object itself sits one level below the envelope the byte scan would count.
    if (valueDepthOver(part, checks.maxNestingDepth - 1))
      return {
        kind: 'too-deep',
        reason: `${what} nests objects/arrays deeper than maxNestingDepth ${checks.maxNestingDepth}`,
      };
  }
  return undefined;
}

function abbreviate(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'bigint' ? `${value}` : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** At most `max` bytes `{` or `[` in `bytes`. */
function openBracketsAtMost(bytes: Uint8Array, max: number): boolean {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let count = 0;
  for (const open of [OPEN_BRACE, OPEN_BRACKET]) {
    for (let i = buffer.indexOf(open); i !== -1; i = buffer.indexOf(open, i + 1)) if (++count > max) return false;
  }
  return true;
}
