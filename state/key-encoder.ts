import { StateError } from './errors.ts';

/**
 * Canonical, reversible key encoding. The same logical key always yields the same bytes (object
 * properties are sorted, -0 is 0), and different types never collide (1 and '1' differ), so the
 * bytes can be hashed to a key group and used as a store key. Supported: null, undefined,
 * booleans, numbers, bigints, strings, Dates, Uint8Arrays, arrays and plain objects of these.
 */
const enum Tag {
  Null = 0,
  Undefined = 1,
  False = 2,
  True = 3,
  Number = 4,
  BigInt = 5,
  String = 6,
  Bytes = 7,
  Array = 8,
  Object = 9,
  Date = 10,
}

export function encodeKey(key: unknown): Buffer {
  // Fast paths for the common single-column keys.
  if (typeof key === 'string') return withTag(Tag.String, lengthPrefixed(Buffer.from(key, 'utf8')));
  if (typeof key === 'number') return numberBytes(Tag.Number, key);
  const parts: Buffer[] = [];
  encodeInto(key, parts);
  return Buffer.concat(parts);
}

export function decodeKey(bytes: Buffer): unknown {
  const reader = { bytes, pos: 0 };
  const value = decodeFrom(reader);
  if (reader.pos !== bytes.length) throw new StateError(`corrupt key: ${bytes.length - reader.pos} trailing bytes`);
  return value;
}

function withTag(tag: Tag, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = tag;
  body.copy(out, 1);
  return out;
}

function lengthPrefixed(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(body.length + 4);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

function numberBytes(tag: Tag, n: number): Buffer {
  const out = Buffer.allocUnsafe(9);
  out[0] = tag;
  out.writeDoubleBE(Object.is(n, -0) ? 0 : n, 1);
  return out;
}

function count(tag: Tag, n: number): Buffer {
  const out = Buffer.allocUnsafe(5);
  out[0] = tag;
  out.writeUInt32BE(n, 1);
  return out;
}

function encodeInto(value: unknown, parts: Buffer[]): void {
  if (value === null) parts.push(Buffer.of(Tag.Null));
  else if (value === undefined) parts.push(Buffer.of(Tag.Undefined));
  else if (typeof value === 'boolean') parts.push(Buffer.of(value ? Tag.True : Tag.False));
  else if (typeof value === 'number') parts.push(numberBytes(Tag.Number, value));
  else if (typeof value === 'bigint') parts.push(withTag(Tag.BigInt, lengthPrefixed(Buffer.from(value.toString()))));
  else if (typeof value === 'string') parts.push(withTag(Tag.String, lengthPrefixed(Buffer.from(value, 'utf8'))));
  else if (value instanceof Date) parts.push(numberBytes(Tag.Date, value.getTime()));
  else if (value instanceof Uint8Array) parts.push(withTag(Tag.Bytes, lengthPrefixed(value)));
  else if (Array.isArray(value)) {
    parts.push(count(Tag.Array, value.length));
    for (const item of value as unknown[]) encodeInto(item, parts);
  } else if (isPlainObject(value)) {
    const names = Object.keys(value).sort();
    parts.push(count(Tag.Object, names.length));
    for (const name of names) {
      parts.push(lengthPrefixed(Buffer.from(name, 'utf8')));
      encodeInto(value[name], parts);
    }
  } else {
    throw new StateError(
      `cannot use ${describe(value)} as a state key; use primitives, Dates, byte arrays, arrays or plain objects`,
      { domain: 'user' },
    );
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (typeof value === 'object' && value !== null) return `a ${value.constructor?.name ?? 'object'}`;
  return `a ${typeof value}`;
}

interface Reader {
  readonly bytes: Buffer;
  pos: number;
}

function need(r: Reader, n: number): void {
  if (r.pos + n > r.bytes.length) throw new StateError('corrupt key: truncated');
}

function readChunk(r: Reader): Buffer {
  need(r, 4);
  const len = r.bytes.readUInt32BE(r.pos);
  need(r, 4 + len);
  const chunk = r.bytes.subarray(r.pos + 4, r.pos + 4 + len);
  r.pos += 4 + len;
  return chunk;
}

function readCount(r: Reader): number {
  need(r, 4);
  const n = r.bytes.readUInt32BE(r.pos);
  r.pos += 4;
  return n;
}

function decodeFrom(r: Reader): unknown {
  need(r, 1);
  const tag = r.bytes[r.pos++] as Tag;
  switch (tag) {
    case Tag.Null:
      return null;
    case Tag.Undefined:
      return undefined;
    case Tag.False:
      return false;
    case Tag.True:
      return true;
    case Tag.Number:
    case Tag.Date: {
      need(r, 8);
      const n = r.bytes.readDoubleBE(r.pos);
      r.pos += 8;
      return tag === Tag.Date ? new Date(n) : n;
    }
    case Tag.BigInt:
      return BigInt(readChunk(r).toString());
    case Tag.String:
      return readChunk(r).toString('utf8');
    case Tag.Bytes:
      return new Uint8Array(readChunk(r));
    case Tag.Array: {
      const n = readCount(r);
      const items: unknown[] = [];
      for (let i = 0; i < n; i++) items.push(decodeFrom(r));
      return items;
    }
    case Tag.Object: {
      const n = readCount(r);
      const obj: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) obj[readChunk(r).toString('utf8')] = decodeFrom(r);
      return obj;
    }
    default:
      throw new StateError(`corrupt key: unknown tag ${String(tag)}`);
  }
}
