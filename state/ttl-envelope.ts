import { StateError } from './errors.ts';

/**
 * Stored values carry a one-byte format flag; values of states with a TTL also carry the time of
 * their last write, so expiry survives snapshot and restore.
 */
const PLAIN = 0;
const TIMESTAMPED = 1;

export interface Unwrapped {
  readonly payload: Buffer;
  /** Epoch ms of the last write; undefined for values written without TTL. */
  readonly writtenAtMs: number | undefined;
}

export function wrapValue(payload: Buffer, writtenAtMs: number | undefined): Buffer {
  if (writtenAtMs === undefined) {
    const out = Buffer.allocUnsafe(payload.length + 1);
    out[0] = PLAIN;
    payload.copy(out, 1);
    return out;
  }
  const out = Buffer.allocUnsafe(payload.length + 9);
  out[0] = TIMESTAMPED;
  out.writeDoubleBE(writtenAtMs, 1);
  payload.copy(out, 9);
  return out;
}

/** The header `wrapValue` puts in front of a payload: its length, and it written into `out`. */
export function valueHeaderBytes(writtenAtMs: number | undefined): number {
  return writtenAtMs === undefined ? 1 : 9;
}

/** Writes the header of `wrapValue` into the first `valueHeaderBytes(writtenAtMs)` bytes of `out`. */
export function writeValueHeader(out: Buffer, writtenAtMs: number | undefined): void {
  if (writtenAtMs === undefined) {
    out[0] = PLAIN;
    return;
  }
  out[0] = TIMESTAMPED;
  out.writeDoubleBE(writtenAtMs, 1);
}

export function unwrapValue(stored: Buffer): Unwrapped {
  const flag = stored[0];
  if (flag === PLAIN) return { payload: stored.subarray(1), writtenAtMs: undefined };
  if (flag === TIMESTAMPED && stored.length >= 9) {
    return { payload: stored.subarray(9), writtenAtMs: stored.readDoubleBE(1) };
  }
  throw new StateError(`corrupt state value: unknown format flag ${String(flag)}`);
}

/** The write time of a stored value, read in place (no allocation); undefined when it has none. */
export function writtenAtOf(stored: Buffer): number | undefined {
  return stored[0] === TIMESTAMPED && stored.length >= 9 ? stored.readDoubleBE(1) : undefined;
}

export function isExpired(writtenAtMs: number | undefined, ttlMs: number | undefined, nowMs: number): boolean {
  return ttlMs !== undefined && writtenAtMs !== undefined && nowMs - writtenAtMs >= ttlMs;
}
