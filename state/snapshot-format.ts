import { StateError } from './errors.ts';
import type { KeyGroupRange } from './key-groups.ts';
import type { StoreWrite } from './key-value-store.ts';
import { keyGroupOfStateKey } from './state-key-layout.ts';

/**
 * Snapshot file layout (full and delta alike), grouped by key group so a restore can skip the
 * groups it does not own without decoding them:
 *   magic 'CDST' | u8 version | u32 sectionCount
 *   per section: u16 keyGroup | u32 entryCount | u32 byteLength | entries
 *   per entry:   u32 keyLength | key | i32 valueLength (-1 = delete) | value
 */
const MAGIC = Buffer.from('CDST', 'latin1');
const VERSION = 1;

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

/** Writes of the key groups within `range`, in file order. */
export function* decodeSnapshot(data: Buffer, range: KeyGroupRange, source: string): Generator<StoreWrite> {
  const fail = (why: string): never => {
    throw new StateError(`snapshot file ${source} is corrupt: ${why}`);
  };
  if (data.length < MAGIC.length + 5 || !data.subarray(0, MAGIC.length).equals(MAGIC)) fail('bad magic');
  if (data[MAGIC.length] !== VERSION) fail(`unsupported version ${String(data[MAGIC.length])}`);
  const sections = data.readUInt32BE(MAGIC.length + 1);
  let pos = MAGIC.length + 5;
  for (let s = 0; s < sections; s++) {
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
