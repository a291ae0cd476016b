import { deserialize, serialize } from 'node:v8';
import { decodeKey, encodeKey } from './key-encoder.ts';

/** Turns state values into bytes and back. Must be deterministic enough to round-trip. */
export interface Serializer<T> {
  serialize(value: T): Buffer;
  deserialize(bytes: Buffer): T;
  /**
   * `deserialize` is cheap because it decodes on access. The backend then keeps flushed values
   * in its cache as read back from their bytes rather than as the objects written, so those
   * object graphs die young instead of aging in the cache (old-generation GC). @default false
   */
  readonly decodesLazily?: boolean;
  /**
   * `serialize` into a buffer with `room` bytes left free in front (the store's value header),
   * so the caller does not copy the encoding into a second buffer. Bytes from `room` on equal
   * `serialize(value)`.
   */
  serializeWithRoom?(value: T, room: number): Buffer;
  /**
   * What `deserialize(bytes)` would return for `bytes = serialize(value)`, cheaper: it may reuse
   * immutable parts of `value`. Used with `decodesLazily` after a flush.
   */
  decodeWritten?(value: T, bytes: Buffer): T;
}

/**
 * The default: V8's structured clone format — handles BigInt, Date, Map, Set and typed arrays.
 * Not stable across major Node versions in theory; pass a custom serializer for savepoints that
 * must outlive a Node upgrade.
 */
export function v8Serializer<T>(): Serializer<T> {
  return {
    serialize: (value) => serialize(value),
    deserialize: (bytes) => deserialize(bytes) as T,
  };
}

/** JSON: portable and readable, but loses BigInt, Date and Map. */
export function jsonSerializer<T>(): Serializer<T> {
  return {
    serialize: (value) => Buffer.from(JSON.stringify(value), 'utf8'),
    deserialize: (bytes) => JSON.parse(bytes.toString('utf8')) as T,
  };
}

/** The canonical key encoding as a serializer (used for map-state keys). */
export function keySerializer<K>(): Serializer<K> {
  return {
    serialize: (value) => encodeKey(value),
    deserialize: (bytes) => decodeKey(bytes) as K,
  };
}
