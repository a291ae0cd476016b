/**
 * The epoch fence of a sink instance in group mode (runtime/group/): one row per instance in
 * `cdcflow_sink_fences` holding the owner epoch of the partition task that may commit for it.
 *
 * - Every write transaction reads the row `WHERE epoch = <ours> FOR SHARE` just before PREPARE:
 *   zero rows means a newer owner claimed the partition, and the transaction is rolled back
 *   (`OwnershipLostError`). The share lock is held by the prepared transaction until its
 *   COMMIT/ROLLBACK PREPARED, so no claim can slip in between the check and the commit, while
 *   our own next checkpoint (two in flight) can still prepare.
 * - A claim (`claim`) raises the epoch after the new owner's recovery rolled back what older
 *   owners prepared and no checkpoint of its own recorded; a claim blocked by an older owner's
 *   prepared transaction (it prepared after that recovery) times out, the caller rolls back again
 *   and retries. Once the claim committed no older owner can prepare, hence never commit.
 * - Each claim and each commit leaves a row in `cdcflow_sink_fence_log` (visible when it commits),
 *   whose `seq` order is the order the row lock was held in: an audit of who committed under
 *   which epoch.
 * Unlike the advisory-lock instance fence (instance-fence.ts) a paused older owner's open session
 * does not block the new owner: the newest epoch wins, the older one finds out at its next write.
 */
import { OwnershipLostError, type OwnerEpoch } from '../owner-epoch.ts';
import { PostgresSinkError, sqlStateOf, type PgSession } from './pg-session.ts';
import type { Statement } from './sql.ts';

const FENCES = 'cdcflow_sink_fences';
const LOG = 'cdcflow_sink_fence_log';

export async function ensureFenceTables(control: PgSession): Promise<void> {
  for (const sql of [
    `CREATE TABLE IF NOT EXISTS ${FENCES} (instance text PRIMARY KEY, epoch bigint NOT NULL, owner text NOT NULL, claimed_at timestamptz NOT NULL DEFAULT now())`,
    `CREATE TABLE IF NOT EXISTS ${LOG} (seq bigserial PRIMARY KEY, instance text NOT NULL, kind text NOT NULL, epoch bigint NOT NULL, owner text NOT NULL, checkpoint_id bigint, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
  ]) {
    try {
      await control.query(sql);
    } catch (error) {
      // Two sessions creating it at once: the loser sees a duplicate type or table; the table exists.
      if (!['23505', '42P07'].includes(sqlStateOf(error) ?? '')) throw error;
    }
  }
}

/** Inside the write transaction, just before PREPARE: throws OwnershipLostError if a newer owner claimed. */
export async function checkFenceInTransaction(
  writer: PgSession,
  instance: string,
  owner: OwnerEpoch,
  checkpointId: number,
): Promise<void> {
  // A share lock: it keeps a claim (an UPDATE of the row) out until this transaction commits or
  // rolls back, but not our own next checkpoint's check. With an exclusive lock, checkpoint k + 1's
  // check waited for k's COMMIT PREPARED, which the same (blocked) sink thread was to send.
  const { rows } = await writer.query<{ epoch: string }>(
    `SELECT epoch FROM ${FENCES} WHERE instance = $1 AND epoch = $2 FOR SHARE`,
    [instance, owner.epoch],
  );
  if (rows.length === 0) {
    await writer.query('ROLLBACK');
    throw new OwnershipLostError(instance, owner.epoch, await currentEpoch(writer, instance));
  }
  const log = logStatement(instance, 'commit', owner, checkpointId);
  await writer.query(log.sql, log.params);
}

/**
 * Raises the instance's epoch to ours. Resolves false if an older owner's prepared transaction
 * held the row for `lockTimeoutMs` (roll back leftovers, then call again); throws
 * OwnershipLostError if a newer owner already claimed.
 */
export async function claimFence(
  control: PgSession,
  instance: string,
  owner: OwnerEpoch,
  lockTimeoutMs: number,
): Promise<boolean> {
  await control.query('BEGIN');
  try {
    await control.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
    const { rows } = await control.query<{ epoch: string }>(
      `INSERT INTO ${FENCES} AS f (instance, epoch, owner) VALUES ($1, $2, $3)
         ON CONFLICT (instance) DO UPDATE SET epoch = EXCLUDED.epoch, owner = EXCLUDED.owner, claimed_at = now() WHERE f.epoch <= EXCLUDED.epoch
       RETURNING epoch`,
      [instance, owner.epoch, owner.owner],
    );
    if (rows.length === 0) {
      await control.query('ROLLBACK');
      throw new OwnershipLostError(instance, owner.epoch, await currentEpoch(control, instance));
    }
    const log = logStatement(instance, 'claim', owner, null);
    await control.query(log.sql, log.params);
    await control.query('COMMIT');
    return true;
  } catch (error) {
    if (error instanceof OwnershipLostError) throw error;
    await control.query('ROLLBACK').catch(() => undefined);
    if (sqlStateOf(error) === '55P03') return false; // lock_not_available: an older owner's prepared transaction
    throw error instanceof PostgresSinkError
      ? error
      : new PostgresSinkError(
          `could not claim the fence of sink instance '${instance}': ${(error as Error).message}`,
          sqlStateOf(error),
          { retriable: true, cause: error },
        );
  }
}

/** The epoch the fence of `instance` holds now, or undefined if no owner claimed it yet. */
export async function currentEpoch(session: PgSession, instance: string): Promise<number | undefined> {
  const { rows } = await session
    .query<{ epoch: string }>(`SELECT epoch FROM ${FENCES} WHERE instance = $1`, [instance])
    .catch(() => ({ rows: [] as { epoch: string }[] }));
  return rows[0] === undefined ? undefined : Number(rows[0].epoch);
}

function logStatement(
  instance: string,
  kind: 'claim' | 'commit',
  owner: OwnerEpoch,
  checkpointId: number | null,
): Statement {
  return {
    sql: `INSERT INTO ${LOG} (instance, kind, epoch, owner, checkpoint_id) VALUES ($1, $2, $3, $4, $5)`,
    params: [instance, kind, owner.epoch, owner.owner, checkpointId],
  };
}
