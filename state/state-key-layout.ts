import { StateError } from './errors.ts';

/**
 * Layout of a stored key: `u16 nameLength | name | u16 keyGroup | u32 keyLength | key | mapKey?`.
 * State name and key group come first so one prefix scan lists a state's keys per key group, and
 * the length-prefixed user key keeps 'ab' and 'abc' apart so a prefix scan per user key finds
 * exactly that key's map entries.
 */
export function stateNamePrefix(stateName: string): Buffer {
  const name = Buffer.from(stateName, 'utf8');
  if (name.length > 0xffff) throw new StateError(`state name too long: ${stateName.slice(0, 40)}…`, { domain: 'user' });
  const out = Buffer.allocUnsafe(2 + name.length);
  out.writeUInt16BE(name.length, 0);
  name.copy(out, 2);
  return out;
}

/** Prefix of all keys of one state in one key group. */
export function keyGroupPrefix(namePrefix: Buffer, keyGroup: number): Buffer {
  const out = Buffer.allocUnsafe(namePrefix.length + 2);
  namePrefix.copy(out, 0);
  out.writeUInt16BE(keyGroup, namePrefix.length);
  return out;
}

/** The key of a value/list state entry, and the prefix of a map state's entries. */
export function stateKey(namePrefix: Buffer, keyGroup: number, userKey: Buffer): Buffer {
  const out = Buffer.allocUnsafe(namePrefix.length + 6 + userKey.length);
  namePrefix.copy(out, 0);
  out.writeUInt16BE(keyGroup, namePrefix.length);
  out.writeUInt32BE(userKey.length, namePrefix.length + 2);
  userKey.copy(out, namePrefix.length + 6);
  return out;
}

export function mapEntryKey(stateKeyBytes: Buffer, mapKey: Buffer): Buffer {
  return Buffer.concat([stateKeyBytes, mapKey]);
}

export interface DecodedStateKey {
  readonly stateName: string;
  readonly keyGroup: number;
  readonly userKey: Buffer;
  /** Empty for value and list state. */
  readonly mapKey: Buffer;
}

export function decodeStateKey(stored: Buffer): DecodedStateKey {
  if (stored.length < 2) throw new StateError('corrupt state key: too short');
  const nameLength = stored.readUInt16BE(0);
  const keyOffset = 2 + nameLength + 6;
  if (stored.length < keyOffset) throw new StateError('corrupt state key: truncated header');
  const userKeyLength = stored.readUInt32BE(2 + nameLength + 2);
  if (stored.length < keyOffset + userKeyLength) throw new StateError('corrupt state key: truncated user key');
  return {
    stateName: stored.toString('utf8', 2, 2 + nameLength),
    keyGroup: stored.readUInt16BE(2 + nameLength),
    userKey: stored.subarray(keyOffset, keyOffset + userKeyLength),
    mapKey: stored.subarray(keyOffset + userKeyLength),
  };
}

/** The key group of a stored key without decoding the rest; used when filtering on restore. */
export function keyGroupOfStateKey(stored: Buffer): number {
  const nameLength = stored.readUInt16BE(0);
  return stored.readUInt16BE(2 + nameLength);
}
