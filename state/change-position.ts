/**
 * Where a change sits in its source's commit order, as one small comparable, serialisable value.
 *
 * Debezium's Postgres connector gives every change `source.sequence = ["<last commit LSN>",
 * "<change LSN>"]`. `source.lsn` alone is the change record's own LSN: concurrent transactions
 * interleave in the WAL, so a transaction that commits later can hold lower change LSNs, and it is
 * no order at all. The connector streams whole transactions in commit order and sets "last commit
 * LSN" when it reads a COMMIT, so a change carries the commit LSN of the transaction streamed
 * *before* its own (null for the first transaction after a fresh start): strictly increasing from
 * one transaction to the next, constant inside one; inside one transaction the change LSN rises.
 * The pair, compared as integers, is therefore commit order (Debezium's own dedup key).
 *
 * Snapshot rows (`op: r`) carry the snapshot's start LSN, which can be at or above the change LSNs
 * (and the null last-commit) of transactions that commit after the snapshot began, so they form a
 * lower tier: a snapshot row ranks below every streamed change of its key, and snapshot rows
 * compare among themselves by their pair (a later snapshot replaces an earlier one).
 *
 * Encoding: `"<tier>/<16 hex commit LSN>/<16 hex change LSN>"` (tier `0` snapshot, `1` streamed),
 * fixed width, so string comparison (`<`, Postgres `COLLATE "C"`) is commit order. LSNs are
 * unsigned 64-bit; the text form keeps all 64 bits exactly (a JS number would lose them above 2^53).
 */
import { StateError } from './errors.ts';

declare const positionBrand: unique symbol;
/** A commit-order position; compare with `<` or `comparePositions`. */
export type ChangePosition = string & { readonly [positionBrand]: true };

export type PositionTier = 'snapshot' | 'stream';

const POSITION = /^[01]\/[0-9a-f]{16}\/[0-9a-f]{16}$/;
const DECIMAL = /^\d{1,20}$/;
const MAX_U64 = (1n << 64n) - 1n;
const ZERO = '0000000000000000';

/** The 16-hex form of an LSN given as a safe integer, a bigint or a decimal string; undefined if invalid. */
export function lsnHex(lsn: number | bigint | string): string | undefined {
  if (typeof lsn === 'number') {
    return Number.isSafeInteger(lsn) && lsn >= 0 ? lsn.toString(16).padStart(16, '0') : undefined;
  }
  if (typeof lsn === 'string') {
    if (!DECIMAL.test(lsn)) return undefined;
    // Up to 15 digits is always below 2^53: the cheap path for every real LSN of this decade.
    if (lsn.length <= 15) return Number(lsn).toString(16).padStart(16, '0');
    lsn = BigInt(lsn);
  }
  return lsn >= 0n && lsn <= MAX_U64 ? lsn.toString(16).padStart(16, '0') : undefined;
}

function hexOrThrow(lsn: number | bigint | string, what: string): string {
  const hex = lsnHex(lsn);
  if (hex === undefined)
    throw new StateError(`${what} ${String(lsn)} is not an unsigned 64-bit LSN`, { domain: 'user' });
  return hex;
}

/** A streamed change: `commitLsn` is Debezium's last-commit LSN (null → 0), `changeLsn` its own. */
export function streamPosition(
  commitLsn: number | bigint | string | null,
  changeLsn: number | bigint | string,
): ChangePosition {
  return `1/${commitLsn === null ? ZERO : hexOrThrow(commitLsn, 'commit LSN')}/${hexOrThrow(changeLsn, 'change LSN')}` as ChangePosition;
}

/** A snapshot row (`op: r`): below every streamed change; snapshots compare by their pair. */
export function snapshotPosition(
  commitLsn: number | bigint | string | null,
  lsn: number | bigint | string,
): ChangePosition {
  return `0/${commitLsn === null ? ZERO : hexOrThrow(commitLsn, 'commit LSN')}/${hexOrThrow(lsn, 'snapshot LSN')}` as ChangePosition;
}

/**
 * The position of state written before positions existed (upsert entries with only an LSN). It
 * ranks like a snapshot row at that LSN: any streamed change then wins over it, which never drops a
 * real change; the cost is that a connector re-sending older changes may apply them once more before
 * the newer ones arrive again (the end state is the same).
 */
export function legacyLsnPosition(lsn: number): ChangePosition {
  return snapshotPosition(null, lsn);
}

/** Validates text read from outside (state, a sink column, a header). */
export function parsePosition(text: string): ChangePosition | undefined {
  return POSITION.test(text) ? (text as ChangePosition) : undefined;
}

export function comparePositions(a: ChangePosition, b: ChangePosition): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface PositionParts {
  readonly tier: PositionTier;
  readonly commitLsn: bigint;
  readonly changeLsn: bigint;
}

export function positionParts(position: ChangePosition): PositionParts {
  return {
    tier: position.charCodeAt(0) === 0x30 ? 'snapshot' : 'stream',
    commitLsn: BigInt(`0x${position.slice(2, 18)}`),
    changeLsn: BigInt(`0x${position.slice(19, 35)}`),
  };
}

/** Bytes of the binary form (state headers): 1 tier byte + two big-endian u64. */
export const POSITION_BYTES = 17;

export function writePosition(position: ChangePosition, out: Buffer, offset: number): void {
  out[offset] = position.charCodeAt(0) - 0x30;
  // Digit by digit: no substring and no hex decoder call per write (a position is always valid here).
  for (let i = 0; i < 8; i++) {
    out[offset + 1 + i] = (nibble(position.charCodeAt(2 + 2 * i)) << 4) | nibble(position.charCodeAt(3 + 2 * i));
    out[offset + 9 + i] = (nibble(position.charCodeAt(19 + 2 * i)) << 4) | nibble(position.charCodeAt(20 + 2 * i));
  }
}

/** The value of a hex digit's char code (either case). */
function nibble(code: number): number {
  return code <= 0x39 ? code - 0x30 : (code | 0x20) - 0x57;
}

export function readPosition(bytes: Buffer, offset: number): ChangePosition {
  const tier = bytes[offset];
  if (tier !== 0 && tier !== 1) throw new StateError(`corrupt position: tier byte ${String(tier)}`);
  return `${tier}/${bytes.toString('hex', offset + 1, offset + 9)}/${bytes.toString('hex', offset + 9, offset + 17)}` as ChangePosition;
}
