import { deserialize, serialize } from 'node:v8';
import {
  legacyLsnPosition,
  POSITION_BYTES,
  readPosition,
  writePosition,
  type ChangePosition,
} from './change-position.ts';
import { StateError, UnstorableValueError } from './errors.ts';
import type { Serializer } from './serializers.ts';
import type { UpsertEntry } from './upsert-table.ts';

/**
 * The upsert table's value format, versioned by its first byte. The replay guard needs only the
 * position (and a tombstone's delete time), so those sit in a fixed header and the row is decoded
 * only when someone reads it:
 *   v2 (0xd0|flags): u8 format | 17-byte position | f64 deletedAtMs (if flagged) | row (JSON or v8, if flagged)
 * Rows made only of JSON types are stored as JSON (about twice as fast as v8 both ways); anything
 * JSON would change (bigint, Date, Buffer, undefined, -0, NaN, holes) falls back to v8.
 * Older formats still read, so checkpoints and savepoints taken before positions existed restore:
 *   v1 (0xc0|flags): u8 format | f64 lsn | f64 deletedAtMs (if flagged) | row;
 *   v0 (0xff): plain v8 of `{ row, lsn, deletedAtMs? }`.
 * Their LSN becomes `legacyLsnPosition(lsn)` (ranks like a snapshot row, below any streamed change).
 */
const FORMAT = 0xd0;
const FORMAT_V1 = 0xc0;
const HAS_DELETED_AT = 0x01;
const ROW_JSON = 0x02;
const ROW_V8 = 0x04;
const V8_VERSION_TAG = 0xff;

/** An entry read back from the store; `row` is decoded on first access. */
class StoredUpsertEntry<T> implements UpsertEntry<T> {
  declare readonly deletedAtMs?: number;
  private decoded: T | null | undefined;

  constructor(
    readonly position: ChangePosition,
    deletedAtMs: number | undefined,
    private bytes: Buffer | undefined,
    private readonly json: boolean,
  ) {
    if (deletedAtMs !== undefined) (this as { deletedAtMs?: number }).deletedAtMs = deletedAtMs;
    if (bytes === undefined) this.decoded = null;
  }

  /** What JSON.stringify shows: the entry as plain data. */
  toJSON(): UpsertEntry<T> {
    return this.deletedAtMs === undefined
      ? { row: this.row, position: this.position }
      : { row: this.row, position: this.position, deletedAtMs: this.deletedAtMs };
  }

  get row(): T | null {
    if (this.decoded === undefined) {
      const bytes = this.bytes as Buffer;
      this.decoded = (this.json ? JSON.parse(bytes.toString('utf8')) : deserialize(bytes)) as T;
      this.bytes = undefined;
    }
    return this.decoded;
  }
}

export function upsertEntrySerializer<T>(): Serializer<UpsertEntry<T>> {
  return {
    serialize: encodeUpsertEntry,
    serializeWithRoom: encodeUpsertEntry,
    deserialize: (bytes) => decodeUpsertEntry<T>(bytes),
    decodeWritten: (entry, bytes) => writtenUpsertEntry(entry, bytes),
    decodesLazily: true,
  };
}

/** The entry's bytes, after `room` free bytes (the store's value header) when asked. */
export function encodeUpsertEntry<T>(entry: UpsertEntry<T>, room = 0): Buffer {
  const { row, position, deletedAtMs } = entry;
  const header = room + (deletedAtMs === undefined ? 1 + POSITION_BYTES : 9 + POSITION_BYTES);
  let flags = deletedAtMs === undefined ? 0 : HAS_DELETED_AT;
  let out: Buffer;
  if (row === null || row === undefined) {
    out = Buffer.allocUnsafe(header);
  } else if (isJsonSafe(row, 0)) {
    const json = JSON.stringify(row);
    out = Buffer.allocUnsafe(header + Buffer.byteLength(json, 'utf8'));
    out.write(json, header, 'utf8');
    flags |= ROW_JSON;
  } else {
    const payload = serializeStorable(row);
    out = Buffer.allocUnsafe(header + payload.length);
    payload.copy(out, header);
    flags |= ROW_V8;
  }
  out[room] = FORMAT | flags;
  writePosition(position, out, room + 1);
  if (deletedAtMs !== undefined) out.writeDoubleBE(deletedAtMs, room + 1 + POSITION_BYTES);
  return out;
}

/**
 * `decodeUpsertEntry(bytes)` for bytes `encodeUpsertEntry(entry)` just wrote: the position and
 * delete time are taken from the entry instead of decoded (no new position string per write).
 */
function writtenUpsertEntry<T>(entry: UpsertEntry<T>, bytes: Buffer): UpsertEntry<T> {
  const flags = bytes[0] as number;
  if ((flags & 0xf8) !== FORMAT) return decodeUpsertEntry<T>(bytes);
  const header = 1 + POSITION_BYTES + ((flags & HAS_DELETED_AT) !== 0 ? 8 : 0);
  const hasRow = (flags & (ROW_JSON | ROW_V8)) !== 0;
  return new StoredUpsertEntry<T>(
    entry.position,
    entry.deletedAtMs,
    hasRow ? bytes.subarray(header) : undefined,
    (flags & ROW_JSON) !== 0,
  );
}

export function decodeUpsertEntry<T>(bytes: Buffer): UpsertEntry<T> {
  const format = bytes[0];
  if (format === V8_VERSION_TAG) {
    const legacy = deserialize(bytes) as { row: T | null; lsn: number; deletedAtMs?: number };
    const position = legacyLsnPosition(legacy.lsn);
    return legacy.deletedAtMs === undefined
      ? { row: legacy.row, position }
      : { row: legacy.row, position, deletedAtMs: legacy.deletedAtMs };
  }
  const version = format === undefined ? undefined : format & 0xf8;
  if (version !== FORMAT && version !== FORMAT_V1) {
    throw new StateError(`corrupt upsert entry: unknown format byte ${String(format)}`);
  }
  const flags = format as number;
  const positionBytes = version === FORMAT ? POSITION_BYTES : 8;
  const hasDeletedAt = (flags & HAS_DELETED_AT) !== 0;
  const header = 1 + positionBytes + (hasDeletedAt ? 8 : 0);
  if (bytes.length < header) throw new StateError('corrupt upsert entry: truncated header');
  const position = version === FORMAT ? readPosition(bytes, 1) : legacyLsnPosition(bytes.readDoubleBE(1));
  const deletedAtMs = hasDeletedAt ? bytes.readDoubleBE(1 + positionBytes) : undefined;
  const hasRow = (flags & (ROW_JSON | ROW_V8)) !== 0;
  return new StoredUpsertEntry<T>(
    position,
    deletedAtMs,
    hasRow ? bytes.subarray(header) : undefined,
    (flags & ROW_JSON) !== 0,
  );
}

const MAX_DEPTH = 32;

/**
 * Deepest row the codec stores. v8.serialize recurses per level and overflows the stack somewhere
 * past ~10,000 levels; 1,000 leaves a wide margin whatever the stack already holds.
 */
export const MAX_STORABLE_DEPTH = 1000;

/**
 * Why `row` cannot be stored, or undefined. Checked without recursion, so it is safe on any value;
 * `UpsertTable.apply` calls it for each record, so a refusal names the record, not a flush.
 */
export function unstorableReason(row: unknown): string | undefined {
  if (typeof row !== 'object' || row === null || ArrayBuffer.isView(row)) return undefined;
  // A flat row (every Debezium row without arrays, structs or json objects) allocates nothing.
  let nested = false;
  for (const name in row) {
    const child = (row as Record<string, unknown>)[name];
    if (typeof child === 'object' && child !== null) {
      nested = true;
      break;
    }
  }
  if (!nested) return undefined;
  const stack: { value: object; depth: number }[] = [{ value: row, depth: 1 }];
  while (stack.length > 0) {
    const { value, depth } = stack.pop() as { value: object; depth: number };
    if (depth > MAX_STORABLE_DEPTH)
      return `the row nests objects/arrays deeper than ${MAX_STORABLE_DEPTH} levels, which state cannot store`;
    if (ArrayBuffer.isView(value)) continue;
    // for-in, not Object.values: no array per row on the happy path (flat rows push nothing).
    for (const name in value) {
      const child = (value as Record<string, unknown>)[name];
      if (typeof child === 'object' && child !== null) stack.push({ value: child, depth: depth + 1 });
    }
  }
  return undefined;
}

/** v8.serialize, refusing (typed, not a stack overflow) what it cannot take. */
function serializeStorable(row: unknown): Buffer {
  const problem = unstorableReason(row);
  if (problem !== undefined) throw new UnstorableValueError(problem);
  try {
    return serialize(row);
  } catch (error) {
    throw new UnstorableValueError(`state cannot store the row: ${(error as Error).message}`, error);
  }
}

/** True when JSON.parse(JSON.stringify(value)) gives back an equal value. */
function isJsonSafe(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object': {
      if (value === null) return true;
      if (depth >= MAX_DEPTH) return false;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!(i in value) || !isJsonSafe(value[i], depth + 1)) return false;
        return true;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      for (const name in value) {
        // A `toJSON` member would change what JSON writes; `__proto__` would not parse back as a key.
        if (name === 'toJSON' || name === '__proto__') return false;
        if (!isJsonSafe((value as Record<string, unknown>)[name], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}
