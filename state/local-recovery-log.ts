import { StateError } from './errors.ts';

/**
 * Keys of the local-recovery bookkeeping inside the RocksDB working directory. State keys start
 * with `u16 nameLength | utf8 name`; UTF-8 never contains 0xff, so no state key starts with three
 * 0xff bytes and scans of state stop below this prefix.
 */
export const RECOVERY_PREFIX = Buffer.from([0xff, 0xff, 0xff]);

const META = Buffer.concat([RECOVERY_PREFIX, Buffer.from('m')]);
const MARK = Buffer.concat([RECOVERY_PREFIX, Buffer.from('b')]);
const UNDO = Buffer.concat([RECOVERY_PREFIX, Buffer.from('u')]);

export const metaKey = (): Buffer => META;

function numbered(prefix: Buffer, n: number): Buffer {
  const out = Buffer.allocUnsafe(prefix.length + 8);
  prefix.copy(out, 0);
  out.writeBigUInt64BE(BigInt(n), prefix.length);
  return out;
}

/** The barrier mark of a checkpoint: its value is the undo sequence number at the barrier. */
export const markKey = (checkpointId: number): Buffer => numbered(MARK, checkpointId);
/** One undo record per store write: the values its keys had before it. */
export const undoKey = (seq: number): Buffer => numbered(UNDO, seq);
// Meta ('m') sorts between marks ('b') and undo records ('u'): mark ranges end at 'c'.
export const markRange = { gte: numbered(MARK, 0), lt: Buffer.concat([RECOVERY_PREFIX, Buffer.from('c')]) } as const;
export const undoRange = { gte: numbered(UNDO, 0), lt: numbered(UNDO, Number.MAX_SAFE_INTEGER) } as const;

export const encodeSeq = (seq: number): Buffer => numbered(Buffer.alloc(0), seq);
export const decodeSeq = (value: Buffer): number => Number(value.readBigUInt64BE(0));

/** What the directory was written by: a recovery copy is used only by the same lineage on the same boot. */
export interface RecoveryMeta {
  readonly incarnation: string;
  readonly bootId: string;
}

export interface PriorValue {
  readonly key: Buffer;
  /** The value before the write; `undefined` where the key was absent. */
  readonly value: Buffer | undefined;
}

/** `u32 count | (u32 keyLen | key | u8 present | [u32 valueLen | value])*` */
export function encodeUndo(entries: readonly PriorValue[]): Buffer {
  let size = 4;
  for (const e of entries) size += 4 + e.key.length + 1 + (e.value === undefined ? 0 : 4 + e.value.length);
  const out = Buffer.allocUnsafe(size);
  let at = out.writeUInt32BE(entries.length, 0);
  for (const e of entries) {
    at = out.writeUInt32BE(e.key.length, at);
    at += e.key.copy(out, at);
    at = out.writeUInt8(e.value === undefined ? 0 : 1, at);
    if (e.value !== undefined) {
      at = out.writeUInt32BE(e.value.length, at);
      at += e.value.copy(out, at);
    }
  }
  return out;
}

export function decodeUndo(buf: Buffer): PriorValue[] {
  const fail = (): never => {
    throw new StateError('local recovery: an undo record is truncated; the recovery copy is discarded', {
      domain: 'internal',
    });
  };
  if (buf.length < 4) fail();
  const count = buf.readUInt32BE(0);
  const out: PriorValue[] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (at + 5 > buf.length) fail();
    const keyLen = buf.readUInt32BE(at);
    at += 4;
    const key = buf.subarray(at, at + keyLen);
    at += keyLen;
    const present = buf[at] === 1;
    at += 1;
    let value: Buffer | undefined;
    if (present) {
      const valueLen = buf.readUInt32BE(at);
      at += 4;
      value = buf.subarray(at, at + valueLen);
      at += valueLen;
    }
    if (at > buf.length) fail();
    out.push({ key, value });
  }
  return out;
}
