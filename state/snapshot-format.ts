import { StateError } from './errors.ts';
import type { KeyGroupRange } from './key-groups.ts';
import type { StoreWrite } from './key-value-store.ts';
import { keyGroupOfStateKey } from './state-key-layout.ts';

/**
 * Snapshot file layout (full and delta alike), grouped by key group so a restore can skip the
 * groups it does not own without decoding them:
 *   magic 'CDST' | u8 version | u32 sectionCount (version 1 only)
 *   per section: u16 keyGroup | u32 entryCount | u32 byteLength | entries
 *   per entry:   u32 keyLength | key | i32 valueLength (-1 = delete) | value
 * Version 1 (deltas written before streaming) was built in memory, one section per key group;
 * it is still read. Version 2 (full snapshots and deltas) is streamed: sections of about 1 MiB
 * (a key group may have several) up to the end of the file, so the writer never needs to know
 * the count up front nor hold the file.
 */
const MAGIC = Buffer.from('CDST', 'latin1');
const VERSION = 1;
const STREAMED_VERSION = 2;
/** A streamed section is cut at about this size, so memory stays bounded whatever the state size. */
const STREAMED_SECTION_BYTES = 1 << 20;

export function encodeSnapshot(writes: Iterable<StoreWrite>): Buffer {
  const groups = new Map<number, StoreWrite[]>();
  for (const write of writes) {
    const group = keyGroupOfStateKey(write.key);
    let list = groups.get(group);
    if (list === undefined) groups.set(group, (list = []));
    list.push(write);
  }
  const sorted = [...groups.entries()].sort((a, b) => a[0] - b[0]);
  let size = MAGIC.length + 5;
  for (const [, list] of sorted) size += 10 + sectionBytes(list);
  const out = Buffer.allocUnsafe(size);
  let pos = MAGIC.copy(out, 0);
  out[pos++] = VERSION;
  pos = out.writeUInt32BE(sorted.length, pos);
  for (const [group, list] of sorted) {
    pos = out.writeUInt16BE(group, pos);
    pos = out.writeUInt32BE(list.length, pos);
    pos = out.writeUInt32BE(sectionBytes(list), pos);
    for (const { key, value } of list) {
      pos = out.writeUInt32BE(key.length, pos);
      pos += key.copy(out, pos);
      pos = out.writeInt32BE(value === null ? -1 : value.length, pos);
      if (value !== null) pos += value.copy(out, pos);
    }
  }
  return out;
}

function sectionBytes(list: readonly StoreWrite[]): number {
  let n = 0;
  for (const { key, value } of list) n += 8 + key.length + (value?.length ?? 0);
  return n;
}

/**
 * A full snapshot as a stream of chunks (format version 2): the entries `keep` accepts, cut into
 * sections at key-group changes and at about 1 MiB.
 */
export async function* encodeSnapshotStream(
  batches: AsyncIterable<readonly (readonly [Buffer, Buffer])[]>,
  keep: (key: Buffer, value: Buffer) => boolean,
): AsyncGenerator<Buffer> {
  const header = Buffer.allocUnsafe(MAGIC.length + 1);
  MAGIC.copy(header, 0);
  header[MAGIC.length] = STREAMED_VERSION;
  yield header;
  let section: (readonly [Buffer, Buffer])[] = [];
  let group = -1;
  let bytes = 0;
  for await (const batch of batches) {
    for (const entry of batch) {
      const [key, value] = entry;
      if (!keep(key, value)) continue;
      const entryGroup = keyGroupOfStateKey(key);
      if (entryGroup !== group || bytes >= STREAMED_SECTION_BYTES) {
        if (section.length > 0) yield encodeSection(group, section, bytes);
        section = [];
        group = entryGroup;
        bytes = 0;
      }
      section.push(entry);
      bytes += 8 + key.length + value.length;
    }
  }
  if (section.length > 0) yield encodeSection(group, section, bytes);
}

/**
 * A delta (changes, deletes included) as a stream of chunks in format version 2: grouped by key
 * group, cut into sections of about 1 MiB. Never one buffer of the delta's size: a delta after a
 * bulk load can be hundreds of MB, already held once in the changelog.
 */
export function* encodeDeltaChunks(writes: Iterable<StoreWrite>): Generator<Buffer> {
  const groups = new Map<number, StoreWrite[]>();
  for (const write of writes) {
    const group = keyGroupOfStateKey(write.key);
    let list = groups.get(group);
    if (list === undefined) groups.set(group, (list = []));
    list.push(write);
  }
  const header = Buffer.allocUnsafe(MAGIC.length + 1);
  MAGIC.copy(header, 0);
  header[MAGIC.length] = STREAMED_VERSION;
  yield header;
  for (const group of [...groups.keys()].sort((a, b) => a - b)) {
    let section: (readonly [Buffer, Buffer | null])[] = [];
    let bytes = 0;
    for (const { key, value } of groups.get(group) as StoreWrite[]) {
      if (bytes >= STREAMED_SECTION_BYTES) {
        yield encodeSection(group, section, bytes);
        section = [];
        bytes = 0;
      }
      section.push([key, value]);
      bytes += 8 + key.length + (value?.length ?? 0);
    }
    if (section.length > 0) yield encodeSection(group, section, bytes);
  }
}

function encodeSection(group: number, entries: readonly (readonly [Buffer, Buffer | null])[], bytes: number): Buffer {
  const out = Buffer.allocUnsafe(10 + bytes);
  let pos = out.writeUInt16BE(group, 0);
  pos = out.writeUInt32BE(entries.length, pos);
  pos = out.writeUInt32BE(bytes, pos);
  for (const [key, value] of entries) {
    pos = out.writeUInt32BE(key.length, pos);
    pos += key.copy(out, pos);
    pos = out.writeInt32BE(value === null ? -1 : value.length, pos);
    if (value !== null) pos += value.copy(out, pos);
  }
  return out;
}

/** Writes of the key groups within `range`, in file order. */
export function* decodeSnapshot(data: Buffer, range: KeyGroupRange, source: string): Generator<StoreWrite> {
  const fail = (why: string): never => {
    throw new StateError(`snapshot file ${source} is corrupt: ${why}`);
  };
  if (data.length < MAGIC.length + 1 || !data.subarray(0, MAGIC.length).equals(MAGIC)) fail('bad magic');
  const version = data[MAGIC.length];
  if (version !== VERSION && version !== STREAMED_VERSION) fail(`unsupported version ${String(version)}`);
  if (version === VERSION && data.length < MAGIC.length + 5) fail('truncated header');
  // Version 2 has no count: its sections run to the end of the file.
  const sections = version === VERSION ? data.readUInt32BE(MAGIC.length + 1) : Number.POSITIVE_INFINITY;
  let pos = MAGIC.length + (version === VERSION ? 5 : 1);
  for (let s = 0; s < sections && (version === VERSION || pos < data.length); s++) {
    if (pos + 10 > data.length) fail('truncated section header');
    const group = data.readUInt16BE(pos);
    const entries = data.readUInt32BE(pos + 2);
    const bytes = data.readUInt32BE(pos + 6);
    pos += 10;
    const end = pos + bytes;
    if (end > data.length) fail('truncated section');
    if (group < range.start || group > range.end) {
      pos = end;
      continue;
    }
    for (let e = 0; e < entries; e++) {
      const keyLength = data.readUInt32BE(pos);
      const key = data.subarray(pos + 4, pos + 4 + keyLength);
      pos += 4 + keyLength;
      const valueLength = data.readInt32BE(pos);
      pos += 4;
      const value = valueLength < 0 ? null : data.subarray(pos, pos + valueLength);
      pos += Math.max(valueLength, 0);
      yield { key, value };
    }
    if (pos !== end) fail(`section of key group ${group} has inconsistent length`);
  }
}
