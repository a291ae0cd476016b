/**
 * The Postgres sink's owner-epoch fence (group mode, operators/sinks/postgres/epoch-fence.ts)
 * against a real server, with two owners of one partition task restored from the same checkpoint:
 * the races the multi-process group-mode test hit by chance, made deterministic.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { StreamRecord } from '../../operators/operator.ts';
import { firstCheckpointIdOfEpoch, OwnershipLostError, registerOwnerEpoch } from '../../operators/sinks/owner-epoch.ts';
import { PostgresCommitter } from '../../operators/sinks/postgres/postgres-committer.ts';
import { resolvePostgresSinkOptions } from '../../operators/sinks/postgres/postgres-options.ts';
import type { TableChange } from '../../operators/table-change.ts';
import { streamPosition } from '../../state/change-position.ts';
import { countingOperatorContext } from '../support/operator-context.ts';
import { testEndpoints } from '../support/endpoints.ts';

type Change = TableChange<number, { id: number; status: string }>;
const { databaseUrl } = testEndpoints();
const suffix = Math.random().toString(36).slice(2, 8);
const table = `epoch_fence_${suffix}`;

const upsert = (id: number, status: string): StreamRecord<Change> => ({
  value: {
    kind: 'upsert',
    key: id,
    row: { id, status },
    previous: null,
    position: streamPosition(0, id),
    sourceTsMs: 0,
  },
  timestamp: undefined,
});

async function sql<R extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<R[]> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    return (await db.query<R>(text, params)).rows;
  } finally {
    await db.end();
  }
}

/** A committer of the partition task `jobName` holding `epoch`. */
function owner(
  jobName: string,
  epoch: number,
  lockTimeoutMs = 10_000,
): { committer: PostgresCommitter<Change>; release: () => void } {
  const release = registerOwnerEpoch(jobName, { epoch, owner: `test owner ${epoch}` });
  const options = resolvePostgresSinkOptions<Change>({
    connectionString: databaseUrl,
    table,
    primaryKey: ['id'],
    lockTimeoutMs,
    log: () => undefined,
  });
  const committer = new PostgresCommitter<Change>(
    options,
    { jobName, sinkUid: 'pg', subtaskIndex: 0 },
    countingOperatorContext(jobName, 'pg'),
  );
  return { committer, release };
}

const prepared = (jobName: string) =>
  sql<{ gid: string }>('SELECT gid FROM pg_prepared_xacts WHERE left(gid, length($1)) = $1', [`${jobName}:`]);

afterAll(async () => {
  for (const { gid } of await sql<{ gid: string }>('SELECT gid FROM pg_prepared_xacts WHERE gid LIKE $1', [
    `epoch-fence-${suffix}%`,
  ]))
    await sql(`ROLLBACK PREPARED '${gid}'`).catch(() => undefined);
  await sql(`DROP TABLE IF EXISTS ${table}`);
});

describe('postgres epoch fence: two owners restored from the same checkpoint', () => {
  it('a stale owner that recovers late leaves the newer owner’s prepared transaction alone', async () => {
    await sql(`CREATE TABLE IF NOT EXISTS ${table} (id bigint PRIMARY KEY, status text)`);
    const jobName = `epoch-fence-${suffix}.a`;
    const newer = owner(jobName, 2);
    const stale = owner(jobName, 1);
    try {
      await newer.committer.recover([]);
      const id = firstCheckpointIdOfEpoch(2);
      await newer.committer.beginTransaction();
      await newer.committer.write([upsert(1, 'paid')]);
      const txn = await newer.committer.preCommit(id);

      // The stale owner was paused between its claim and its recovery (SIGSTOP) and wakes up now.
      const error = await stale.committer.recover([]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(OwnershipLostError);
      expect((await prepared(jobName)).map((r) => r.gid)).toEqual([txn.gid]);

      await newer.committer.commit(txn);
      expect(await sql(`SELECT id, status FROM ${table} WHERE id = 1`)).toEqual([{ id: '1', status: 'paid' }]);
    } finally {
      await newer.committer.close();
      await stale.committer.close();
      newer.release();
      stale.release();
    }
  });

  it('an older owner whose prepared checkpoint the new owner rolled back loses ownership, not data', async () => {
    const jobName = `epoch-fence-${suffix}.b`;
    const older = owner(jobName, 1);
    const newer = owner(jobName, 2);
    try {
      await older.committer.recover([]);
      await older.committer.beginTransaction();
      await older.committer.write([upsert(2, 'shipped')]);
      const txn = await older.committer.preCommit(firstCheckpointIdOfEpoch(1) + 7);

      // The new owner restores from a checkpoint before it: what the older owner prepared is void.
      await newer.committer.recover([]);
      expect(await prepared(jobName)).toEqual([]);

      // The older owner's checkpoint completes afterwards (its metadata lives in its own,
      // superseded epoch folder): its commit finds the transaction gone.
      const error = await older.committer.commit(txn).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(OwnershipLostError);
      expect(await sql(`SELECT id FROM ${table} WHERE id = 2`)).toEqual([]);
    } finally {
      await older.committer.close();
      await newer.committer.close();
      older.release();
      newer.release();
    }
  });

  it('one owner prepares its next checkpoint while the previous one is still uncommitted', async () => {
    // Two checkpoints in flight (the default): the barrier of k + 1 reaches the sink before k's
    // commit. An exclusive lock on the fence row, held by k's prepared transaction, made k + 1's
    // fence check wait for k's commit — which the blocked sink thread was to send: a stall.
    const jobName = `epoch-fence-${suffix}.c`;
    const only = owner(jobName, 1, 2_000);
    try {
      await only.committer.recover([]);
      const first = firstCheckpointIdOfEpoch(1);
      await only.committer.beginTransaction();
      await only.committer.write([upsert(10, 'paid')]);
      const k = await only.committer.preCommit(first);
      await only.committer.beginTransaction();
      await only.committer.write([upsert(11, 'paid')]);
      const next = await only.committer.preCommit(first + 1);
      await only.committer.commit(k);
      await only.committer.commit(next);
      expect(await sql(`SELECT id FROM ${table} WHERE id IN (10, 11) ORDER BY id`)).toEqual([
        { id: '10' },
        { id: '11' },
      ]);
    } finally {
      await only.committer.close();
      only.release();
    }
  });
});
