import type { ChangePosition } from '../../../state/index.ts';
import type { SinkTransactionEvent, TwoPhaseCommitOptions } from '../two-phase-commit.ts';
import type { PgConnect } from './pg-session.ts';
import { pgConnect } from './pg-session.ts';

/** A row: any object type, `interface`s included (no index signature needed); its own enumerable fields are the columns. */
type Row = object;

/** What a plain record becomes in the table (the `toChange` mapping of `postgresSink`). */
export type PostgresChange =
  | { readonly kind: 'upsert'; readonly row: Row; readonly position?: ChangePosition; readonly sourceTsMs?: number }
  | {
      readonly kind: 'delete';
      readonly key: Row;
      readonly previous?: Row | null;
      readonly position?: ChangePosition;
      readonly sourceTsMs?: number;
    };

/** Options of `postgresSink`. */
export interface PostgresSinkOptions<T> {
  /** Target table, `name` or `schema.name`; it must exist, with a unique key on `primaryKey`. */
  readonly table: string;
  /** The columns of the table's primary (or unique) key, as in `ON CONFLICT (...)`. */
  readonly primaryKey: readonly string[];
  /** @default process.env.DATABASE_URL */
  readonly connectionString?: string;
  /** Replaces `pg` (tests, other clients); wins over `connectionString`. */
  readonly connect?: PgConnect;
  /**
   * `'two-phase'`: one transaction per checkpoint, PREPAREd at the barrier and COMMIT PREPAREd
   * when the checkpoint completes — rows appear exactly when their checkpoint completes. Needs
   * `max_prepared_transactions > 0`. `'idempotent'`: the transaction commits at the barrier and
   * every write is guarded by `positionColumn`, so replays after a restore cannot move a row
   * backwards; rows may appear up to one checkpoint early. @default 'two-phase'
   */
  readonly mode?: 'two-phase' | 'idempotent';
  /** Plain records → changes. Without it the input must be `TableChange`s of rows keyed by `primaryKey`. */
  readonly toChange?: (value: T) => PostgresChange;
  /** Only these row fields are written (plus the key). @default every field that is a column of the table */
  readonly columns?: readonly string[];
  /**
   * A `text` column holding the change's commit-order position (state/change-position.ts:
   * fixed-width, compared with `COLLATE "C"`); a write only replaces a row with an older (or null)
   * position. Required in idempotent mode. Tables from before positions had `lsn bigint`: see
   * docs/commit-order.md for the one-statement migration. @default 'position' in idempotent mode,
   * none in two-phase mode
   */
  readonly positionColumn?: string;
  /**
   * Deletes in idempotent mode: `'tombstone'` keeps the row with `deletedColumn = true` and the
   * delete's position, so a replayed older upsert cannot resurrect it (read through
   * `WHERE NOT deleted`; non-key columns must be nullable unless deletes carry `previous`);
   * `'delete'` removes the row if its position is older — a replay may then re-insert an older row
   * for a moment until the replayed delete removes it again.
   * @default 'tombstone' in idempotent mode, 'delete' in two-phase mode
   */
  readonly deletes?: 'tombstone' | 'delete';
  /** @default 'deleted' */
  readonly deletedColumn?: string;
  /** Buffered distinct keys that trigger a write into the open transaction before the barrier. @default 5000 */
  readonly flushRows?: number;
  /**
   * Buffered changes are also written into the open transaction once the oldest has waited this
   * long (checked as records arrive), so the barrier's PREPARE carries at most about this much of
   * the interval's rows instead of all of them. Longer merges more repeated keys (fewer rows
   * written); shorter keeps the pre-commit, and freshness, shorter. @default 200
   */
  readonly flushIntervalMs?: number;
  /** Rows per INSERT statement (also capped at 65535 parameters). @default 1000 */
  readonly rowsPerStatement?: number;
  /** A write waiting longer than this for a row lock fails the job (which restarts) instead of hanging. @default 60000 */
  readonly lockTimeoutMs?: number;
  /**
   * A statement without an answer for this long fails and its session is dropped (the job then
   * restarts), instead of hanging on a connection that died silently (a network partition sends no
   * reset; TCP would take ~15 min to give up). Must exceed `lockTimeoutMs`. Only for the built-in
   * `pg` connection. @default lockTimeoutMs + 60000
   */
  readonly queryTimeoutMs?: number;
  /** Commit markers (two-phase mode), created if missing. @default 'cdcflow_sink_commits' */
  readonly markerTable?: string;
  /** Checkpoints a commit marker is kept after its commit. @default 10000 */
  readonly markerRetention?: number;
  /** Commit retries and back-off. */
  readonly retry?: TwoPhaseCommitOptions;
  /** @default 'postgres' */
  readonly name?: string;
  /** Operational events (rolled-back leftovers, repeated commits). @default the job's log (operators/logger.ts) */
  readonly log?: (line: string) => void;
  /** Called after each PREPARE and each commit (in idempotent mode: each commit at the barrier). */
  readonly onTransaction?: (event: SinkTransactionEvent) => void;
  /**
   * A change the table refuses for its value (SQLSTATE class 22 data exception, 23 constraint,
   * 54 limit), or one that cannot be mapped onto the table: `dead-letter` it to the job's
   * dead-letter topic (stage = this sink's uid), `fail` the job naming its key and offset, or
   * `skip` it (counted). The rest of the transaction is written either way. @default 'dead-letter'
   */
  readonly onRefused?: 'dead-letter' | 'fail' | 'skip';
}

export interface ResolvedPostgresSinkOptions<T> {
  readonly table: string;
  readonly primaryKey: readonly string[];
  readonly connect: PgConnect;
  readonly mode: 'two-phase' | 'idempotent';
  readonly toChange: ((value: T) => PostgresChange) | undefined;
  readonly columns: readonly string[] | undefined;
  readonly positionColumn: string | undefined;
  readonly deletes: 'tombstone' | 'delete';
  readonly deletedColumn: string;
  readonly flushRows: number;
  readonly flushIntervalMs: number;
  readonly rowsPerStatement: number;
  readonly lockTimeoutMs: number;
  readonly markerTable: string;
  readonly markerRetention: number;
  readonly retry: TwoPhaseCommitOptions;
  readonly name: string;
  readonly log: ((line: string) => void) | undefined;
  readonly onTransaction: ((event: SinkTransactionEvent) => void) | undefined;
  readonly onRefused: 'dead-letter' | 'fail' | 'skip';
}

/** Validates options and fills defaults; throws (at job build time) on what cannot work. */
export function resolvePostgresSinkOptions<T>(options: PostgresSinkOptions<T>): ResolvedPostgresSinkOptions<T> {
  const mode = options.mode ?? 'two-phase';
  if (mode !== 'two-phase' && mode !== 'idempotent')
    throw new Error(`postgresSink: mode must be 'two-phase' or 'idempotent', not '${String(mode)}'`);
  if (options.primaryKey.length === 0) throw new Error('postgresSink: primaryKey needs at least one column');
  const positionColumn = options.positionColumn ?? (mode === 'idempotent' ? 'position' : undefined);
  const positive = (name: string, value: number | undefined, fallback: number): number => {
    const v = value ?? fallback;
    if (!Number.isInteger(v) || v <= 0) throw new Error(`postgresSink: ${name} must be a positive integer, not ${v}`);
    return v;
  };
  return {
    table: options.table,
    primaryKey: [...options.primaryKey],
    connect:
      options.connect ??
      pgConnect(options.connectionString, {
        queryTimeoutMs: positive('queryTimeoutMs', options.queryTimeoutMs, (options.lockTimeoutMs ?? 60_000) + 60_000),
      }),
    mode,
    toChange: options.toChange,
    columns: options.columns,
    positionColumn,
    deletes: options.deletes ?? (mode === 'idempotent' ? 'tombstone' : 'delete'),
    deletedColumn: options.deletedColumn ?? 'deleted',
    flushRows: positive('flushRows', options.flushRows, 5000),
    flushIntervalMs: positive('flushIntervalMs', options.flushIntervalMs, 200),
    rowsPerStatement: positive('rowsPerStatement', options.rowsPerStatement, 1000),
    lockTimeoutMs: positive('lockTimeoutMs', options.lockTimeoutMs, 60_000),
    markerTable: options.markerTable ?? 'cdcflow_sink_commits',
    markerRetention: positive('markerRetention', options.markerRetention, 10_000),
    retry: options.retry ?? {},
    name: options.name ?? 'postgres',
    log: options.log,
    onTransaction: options.onTransaction,
    onRefused: options.onRefused ?? 'dead-letter',
  };
}
