/**
 * Names, commits and rolls back one sink instance's prepared transactions.
 *
 * Gid: `<job>:<sinkUid>:<subtask>:<checkpointId>` (see `sinkInstanceName`; < 200 bytes, the
 * Postgres limit). Checkpoint ids are never reused, so neither are gids.
 *
 * "Already committed" versus "lost". `COMMIT PREPARED` of a gid that is not prepared fails with
 * 42704 whether we committed it before a crash (fine) or someone rolled it back (its records are
 * gone), and `pg_prepared_xacts` cannot tell the two apart afterwards. So every prepared
 * transaction also writes a commit marker — a row (sink instance, checkpoint id, random nonce) in
 * `cdcflow_sink_commits` — which becomes visible exactly when the transaction commits. On 42704:
 *  - marker with our nonce → it committed earlier: success;
 *  - gid still listed in `pg_prepared_xacts` (a concurrent COMMIT in flight) → retriable error;
 *  - no marker, and this instance's oldest marker is newer → its marker was pruned, which happens
 *    only `markerRetention` checkpoints after it committed: success;
 *  - otherwise → it was rolled back or never prepared: a non-retriable error that says so,
 *    because retrying cannot bring the records back.
 * The nonce keeps a marker left by an earlier run that reused the checkpoint id (its checkpoint
 * folder was deleted) from vouching for ours.
 */
import { PostgresSinkError, sqlStateOf, type PgSession } from './pg-session.ts';
import { quoteLiteral, quoteTable, type Statement } from './sql.ts';

/** What the commit found: committed now, or found committed before (a retry after a crash). */
export type CommitOutcome = 'committed' | 'already-committed';

export class PreparedTransactions {
  private readonly markers: string;

  constructor(
    private readonly control: PgSession,
    /** `sinkInstanceName(identity)` */
    readonly instance: string,
    markerTable: string,
    private readonly markerRetention: number,
  ) {
    this.markers = quoteTable(markerTable);
  }

  gid(checkpointId: number): string {
    return `${this.instance}:${checkpointId}`;
  }

  /** Creates the marker table if needed (concurrent creators are fine). */
  async ensureMarkerTable(): Promise<void> {
    try {
      await this.control.query(
        `CREATE TABLE IF NOT EXISTS ${this.markers} (sink text NOT NULL, checkpoint_id bigint NOT NULL, nonce text NOT NULL, committed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (sink, checkpoint_id))`,
      );
    } catch (error) {
      // Two sessions creating it at once: the loser sees a duplicate type or table; the table exists.
      if (!['23505', '42P07'].includes(sqlStateOf(error) ?? '')) throw error;
    }
  }

  /** Runs inside the transaction, just before PREPARE. */
  markerStatement(checkpointId: number, nonce: string): Statement {
    return {
      sql: `INSERT INTO ${this.markers} (sink, checkpoint_id, nonce) VALUES ($1, $2, $3) ON CONFLICT (sink, checkpoint_id) DO UPDATE SET nonce = EXCLUDED.nonce, committed_at = now()`,
      params: [this.instance, checkpointId, nonce],
    };
  }

  async commit(checkpointId: number, nonce: string): Promise<CommitOutcome> {
    const gid = this.gid(checkpointId);
    try {
      await this.control.query(`COMMIT PREPARED ${quoteLiteral(gid)}`);
      return 'committed';
    } catch (error) {
      if (sqlStateOf(error) !== '42704')
        throw new PostgresSinkError(`COMMIT PREPARED '${gid}' failed: ${messageOf(error)}`, sqlStateOf(error), {
          cause: error,
        });
    }
    const marker = await this.control.query<{ nonce: string }>(
      `SELECT nonce FROM ${this.markers} WHERE sink = $1 AND checkpoint_id = $2`,
      [this.instance, checkpointId],
    );
    if (marker.rows[0]?.nonce === nonce) return 'already-committed';
    const prepared = await this.control.query(
      'SELECT 1 FROM pg_prepared_xacts WHERE gid = $1 AND database = current_database()',
      [gid],
    );
    if (prepared.rowCount > 0)
      throw new PostgresSinkError(
        `prepared transaction '${gid}' is busy (another session is finishing it); retrying`,
        '42704',
      );
    if (marker.rows.length === 0) {
      const oldest = await this.control.query<{ id: string | null }>(
        `SELECT min(checkpoint_id)::text AS id FROM ${this.markers} WHERE sink = $1`,
        [this.instance],
      );
      const id = oldest.rows[0]?.id;
      if (id !== null && id !== undefined && Number(id) > checkpointId) return 'already-committed';
    }
    throw new PostgresSinkError(
      `prepared transaction '${gid}' is gone but never committed: it was rolled back (by another instance of this job and sink, ` +
        `or by hand) or the server lost it. The records of checkpoint ${checkpointId} are missing from the table; ` +
        'make sure only one instance of the job runs, then restore from a savepoint taken before the loss or re-run the backfill.',
      '42704',
      { retriable: false },
    );
  }

  /**
   * Rolls back every transaction this instance left prepared except those in `keep` and those whose
   * checkpoint id `spare` accepts (group mode: a newer owner's); returns their gids.
   */
  async rollbackAllExcept(
    keep: ReadonlySet<string>,
    spare: (checkpointId: number) => boolean = () => false,
  ): Promise<string[]> {
    const prefix = `${this.instance}:`;
    const { rows } = await this.control.query<{ gid: string }>(
      'SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND left(gid, $2) = $1 ORDER BY prepared',
      [prefix, prefix.length],
    );
    const rolledBack: string[] = [];
    for (const { gid } of rows) {
      if (keep.has(gid) || spare(Number(gid.slice(prefix.length)))) continue;
      try {
        await this.control.query(`ROLLBACK PREPARED ${quoteLiteral(gid)}`);
        rolledBack.push(gid);
      } catch (error) {
        if (sqlStateOf(error) !== '42704') throw error; // someone else finished it meanwhile
      }
    }
    return rolledBack;
  }

  /** Prepared transactions of this sink under any subtask index (`<job>:<sink>:*`), oldest first. */
  async leftoversOfSink(): Promise<{ name: string; checkpointId: number | undefined }[]> {
    const prefix = this.instance.slice(0, this.instance.lastIndexOf(':') + 1);
    const { rows } = await this.control.query<{ gid: string }>(
      'SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND left(gid, $2) = $1 ORDER BY prepared',
      [prefix, prefix.length],
    );
    return rows.map(({ gid }) => {
      const id = Number(gid.slice(gid.lastIndexOf(':') + 1));
      return { name: `postgres prepared transaction '${gid}'`, checkpointId: Number.isInteger(id) ? id : undefined };
    });
  }

  /** Rolls back the prepared transactions of this sink under every subtask index; returns their gids. */
  async rollbackAllOfSink(): Promise<string[]> {
    const rolledBack: string[] = [];
    for (const { gid } of (await this.leftoversOfSink()).map((l) => ({ gid: /'(.*)'$/.exec(l.name)?.[1] ?? '' }))) {
      try {
        await this.control.query(`ROLLBACK PREPARED ${quoteLiteral(gid)}`);
        rolledBack.push(gid);
      } catch (error) {
        if (sqlStateOf(error) !== '42704') throw error;
      }
    }
    return rolledBack;
  }

  /** Best effort, every `markerRetention / 10` checkpoints: drop markers no restore can ask about. */
  async pruneMarkers(committedCheckpointId: number): Promise<void> {
    const every = Math.max(1, Math.floor(this.markerRetention / 10));
    if (committedCheckpointId % every !== 0) return;
    try {
      await this.control.query('BEGIN');
      await this.control.query("SET LOCAL lock_timeout = '2s'");
      await this.control.query(`DELETE FROM ${this.markers} WHERE sink = $1 AND checkpoint_id < $2`, [
        this.instance,
        committedCheckpointId - this.markerRetention,
      ]);
      await this.control.query('COMMIT');
    } catch {
      await this.control.query('ROLLBACK').catch(() => undefined);
    }
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
