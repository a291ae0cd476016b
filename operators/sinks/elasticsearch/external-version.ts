/**
 * Elasticsearch's external version is one `long`; a commit-order position is two 64-bit LSNs and
 * a tier. This packs them into a JS-safe integer that preserves commit order per document:
 *  - a snapshot row: its snapshot LSN (`< 2^52`);
 *  - a streamed change: `2^52 + max(last commit LSN, change LSN)`.
 * Why max: Debezium's last commit LSN of a transaction is the commit LSN of the transaction streamed
 * just before it, and every change LSN of a transaction lies before its own commit LSN, so for
 * transactions A then B, max(A) < commit(A) = last-commit(B) ≤ max(B): strictly increasing across
 * transactions. Inside one transaction it never decreases, but two changes of one document in the
 * same transaction can tie (both below the previous commit LSN). Hence `version_type=external_gte`:
 * a tie is taken in arrival order (the upsert emits in commit order), a strictly older version is
 * refused (409, a replay). The cost of `gte`: replaying a checkpoint's batch may re-apply an earlier
 * change of the same transaction for a moment before its later change is re-applied too.
 * Limits: LSNs must stay below 2^52 (4 PiB of WAL); a position beyond that is dead-lettered with
 * reason `invalid_version` rather than written out of order. Streamed changes always outrank
 * snapshot rows (as in the upsert state), so a re-snapshot does not overwrite streamed documents.
 */
import { positionParts, type ChangePosition } from '../../../state/index.ts';

const STREAM_BASE = 2 ** 52;

/** The external version of `position`, or NaN when it does not fit (see the limits above). */
export function externalVersionOf(position: ChangePosition): number {
  const { tier, commitLsn, changeLsn } = positionParts(position);
  const lsn = tier === 'snapshot' ? changeLsn : commitLsn > changeLsn ? commitLsn : changeLsn;
  if (lsn >= BigInt(STREAM_BASE)) return Number.NaN;
  return tier === 'snapshot' ? Number(lsn) : STREAM_BASE + Number(lsn);
}
