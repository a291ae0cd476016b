/**
 * Writes a batch of keyed changes (at most one per primary key) into the target table with as
 * few statements as possible: `INSERT ... SELECT * FROM unnest(...) ON CONFLICT DO UPDATE` per
 * column set (multi-row VALUES for array and json columns), and one
 * `DELETE ... USING unnest(...)` (or tombstone upserts) for the deletes.
 */
import type { ChangePosition } from '../../../state/index.ts';
import { PostgresSinkError, sqlStateOf, type PgSession } from './pg-session.ts';
import { MAX_PARAMS, deleteStatement, quoteTable, upsertStatement, type Statement } from './sql.ts';
import type { ColumnInfo } from './value-checks.ts';

type Row = Readonly<Record<string, unknown>>;

/** Where a change was read (for dead letters of rows the table refuses). */
export interface KeyedChangeOrigin {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/** One change, normalised: `keyId` identifies the primary key (JSON of its values). */
export type KeyedChange =
  | {
      readonly kind: 'upsert';
      readonly keyId: string;
      readonly row: Row;
      readonly position: ChangePosition | undefined;
      readonly sourceTsMs: number | undefined;
      readonly origin?: KeyedChangeOrigin;
    }
  | {
      readonly kind: 'delete';
      readonly keyId: string;
      readonly key: Row;
      readonly previous: Row | null;
      readonly position: ChangePosition | undefined;
      readonly sourceTsMs: number | undefined;
      readonly origin?: KeyedChangeOrigin;
    };

/** A change the table refused (a value its column type or a constraint rejects), with the error. */
export interface RefusedChange {
  readonly change: KeyedChange;
  readonly error: unknown;
  readonly sqlState: string;
}

/**
 * SQLSTATE classes that blame the row, not the session: data exceptions (22: `"twelve euros"`
 * into numeric, `1e400` out of range, bad dates), integrity violations (23: not null, check,
 * foreign key) and program limits (54: an index row too large). Anything else (connection,
 * lock timeout, serialisation) is the sink's problem and fails the write as before.
 */
export function isRowRefusal(sqlState: string | undefined): sqlState is string {
  return sqlState !== undefined && /^(22|23|54)/.test(sqlState);
}

/**
 * Rows per statement on the guarded path: a refused statement is bisected, rewriting about twice
 * its rows, so statements there are kept small (bad rows come in bursts, ~1 per 1,000 in the
 * corpus benchmark); the bare path keeps `maxRowsPerStatement`.
 */
const GUARDED_ROWS_PER_STATEMENT = 100;

/** The savepoint each statement runs under, so a refused row rolls back only its statement. */
const SAVEPOINT = 'cdcflow_statement';

/** How rows are written: with a position guard, and deletes as real deletes or tombstone rows. */
export interface WritePolicy {
  /** Written with every row and compared before overwriting (`target.position < excluded.position`). */
  readonly positionColumn: string | undefined;
  readonly deletes: 'delete' | 'tombstone';
  /** Set true by a tombstone, false by an upsert (tombstone mode only). */
  readonly deletedColumn: string;
  /** Rows per statement (further capped so a statement has at most 65535 parameters). */
  readonly maxRowsPerStatement: number;
}

export class TableWriter {
  private constructor(
    readonly table: string,
    readonly primaryKey: readonly string[],
    private readonly columnTypes: ReadonlyMap<string, string>,
    private readonly policy: WritePolicy,
    /** Every column with its type, NOT NULL and enum-ness: for the client-side value checks. */
    readonly columns: ReadonlyMap<string, ColumnInfo> = new Map(),
  ) {}

  /** Reads the table's columns; fails with a message that names what is missing. */
  static async describe(
    session: PgSession,
    table: string,
    primaryKey: readonly string[],
    policy: WritePolicy,
  ): Promise<TableWriter> {
    const quoted = quoteTable(table);
    let rows: { name: string; type: string; notNull?: boolean; isEnum?: boolean }[];
    try {
      rows = (
        await session.query<{ name: string; type: string; notNull?: boolean; isEnum?: boolean }>(
          `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull", t.typtype = 'e' AS "isEnum"
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
            WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
          [quoted],
        )
      ).rows;
    } catch (error) {
      if (sqlStateOf(error) === '42P01')
        throw new PostgresSinkError(`postgresSink: table ${table} does not exist; create it first`, '42P01', {
          domain: 'user',
          retriable: false,
          cause: error,
        });
      throw error;
    }
    const types = new Map(rows.map((r) => [r.name, r.type]));
    const required = [
      ...primaryKey,
      ...(policy.positionColumn === undefined ? [] : [policy.positionColumn]),
      ...(policy.deletes === 'tombstone' ? [policy.deletedColumn] : []),
    ];
    const missing = required.filter((c) => !types.has(c));
    if (missing.length > 0) {
      throw new PostgresSinkError(
        `postgresSink: table ${table} has no column(s) ${missing.join(', ')} (columns: ${[...types.keys()].join(', ')})`,
        undefined,
        { domain: 'user', retriable: false },
      );
    }
    const positionType = policy.positionColumn === undefined ? undefined : types.get(policy.positionColumn);
    if (positionType !== undefined && positionType !== 'text' && !positionType.startsWith('character varying')) {
      const column = policy.positionColumn as string;
      throw new PostgresSinkError(
        `postgresSink: column ${column} of ${table} is ${positionType}, but it holds commit-order positions, which are text. ` +
          (positionType === 'bigint'
            ? `Migrate it (old LSNs rank below every new position): ALTER TABLE ${table} ALTER COLUMN ${column} TYPE text USING '0/0000000000000000/' || lpad(to_hex(${column}), 16, '0')`
            : `Change its type to text`),
        undefined,
        { domain: 'user', retriable: false },
      );
    }
    const columns = new Map(
      rows.map((r) => [r.name, { type: r.type, notNull: r.notNull === true, isEnum: r.isEnum === true }]),
    );
    return new TableWriter(quoted, primaryKey, types, policy, columns);
  }

  /**
   * Applies `changes` (distinct keys) in the session's current transaction (which must be open:
   * statements run under a savepoint). A statement the table refuses for a row's value is rolled
   * back to its savepoint and its changes are bisected — each half written again under the
   * savepoint — down to the refused rows, which are returned; every other change is written. One
   * bad row in a statement of n rows costs about 2·log2(n) more statements, never the transaction,
   * and the rest of the batch keeps its exactly-once.
   */
  async apply(session: PgSession, changes: readonly KeyedChange[]): Promise<RefusedChange[]> {
    const refused: RefusedChange[] = [];
    await this.applyBisecting(session, changes, refused, GUARDED_ROWS_PER_STATEMENT);
    return refused;
  }

  private async applyBisecting(
    session: PgSession,
    changes: readonly KeyedChange[],
    refused: RefusedChange[],
    maxRows?: number,
  ): Promise<void> {
    for (const { statement, changes: covered } of this.plan(changes, maxRows)) {
      const failure = await this.tryStatement(session, statement);
      if (failure === undefined) continue;
      if (covered.length === 1) {
        refused.push({ change: covered[0] as KeyedChange, ...failure });
        continue;
      }
      const half = Math.ceil(covered.length / 2);
      await this.applyBisecting(session, covered.slice(0, half), refused);
      await this.applyBisecting(session, covered.slice(half), refused);
    }
  }

  /** Applies `changes` with bare statements: a refused row fails the statement and aborts the transaction. */
  async applyUnguarded(session: PgSession, changes: readonly KeyedChange[]): Promise<void> {
    for (const { statement } of this.plan(changes)) await session.query(statement.sql, statement.params);
  }

  /** Runs one statement under the savepoint; a row refusal rolls it back and is returned, anything else is thrown. */
  private async tryStatement(
    session: PgSession,
    statement: Statement,
  ): Promise<{ error: unknown; sqlState: string } | undefined> {
    await session.query(`SAVEPOINT ${SAVEPOINT}`);
    try {
      await session.query(statement.sql, statement.params);
    } catch (error) {
      const sqlState = sqlStateOf(error);
      if (!isRowRefusal(sqlState)) throw error;
      await session.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
      await session.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      return { error, sqlState };
    }
    await session.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
    return undefined;
  }

  statements(changes: readonly KeyedChange[]): Statement[] {
    return this.plan(changes).map((p) => p.statement);
  }

  /** The statements for `changes`, each with the changes it writes. */
  private plan(
    changes: readonly KeyedChange[],
    maxRows = this.policy.maxRowsPerStatement,
  ): { statement: Statement; changes: KeyedChange[] }[] {
    const upserts = new Map<string, { columns: string[]; rows: unknown[][]; changes: KeyedChange[] }>();
    const deletes: KeyedChange[] = [];
    for (const change of changes) {
      if (change.kind === 'delete' && this.policy.deletes === 'delete') deletes.push(change);
      else this.addRow(upserts, change);
    }
    const statements: { statement: Statement; changes: KeyedChange[] }[] = [];
    for (const { columns, rows, changes: grouped } of upserts.values()) {
      const tombstones = columns[columns.length - 1] === TOMBSTONE_MARK;
      const cols = tombstones ? columns.slice(0, -1) : columns;
      const update = tombstones ? this.managedColumns() : cols.filter((c) => !this.primaryKey.includes(c));
      const types = cols.map((c) => this.columnTypes.get(c) as string);
      const typed = types.every((t) => !t.endsWith('[]') && t !== 'json' && t !== 'jsonb');
      const size = Math.min(maxRows, typed ? this.policy.maxRowsPerStatement : this.rowsPerStatement(cols.length));
      for (let at = 0; at < rows.length; at += size) {
        const statement = upsertStatement(
          this.table,
          this.primaryKey,
          cols,
          rows.slice(at, at + size),
          update,
          this.policy.positionColumn,
          typed ? types : undefined,
        );
        statements.push({ statement, changes: grouped.slice(at, at + size) });
      }
    }
    if (deletes.length > 0) statements.push(...this.deleteStatements(deletes));
    return statements;
  }

  private addRow(
    groups: Map<string, { columns: string[]; rows: unknown[][]; changes: KeyedChange[] }>,
    change: KeyedChange,
  ): void {
    const managed = this.managedColumns();
    const source = change.kind === 'upsert' ? change.row : { ...(change.previous ?? {}), ...change.key };
    const columns = Object.keys(source).filter((c) => this.columnTypes.has(c) && !managed.includes(c));
    const values: unknown[] = columns.map((c) => source[c]);
    if (this.policy.positionColumn !== undefined) {
      if (change.position === undefined)
        throw new PostgresSinkError(
          `postgresSink: a change for key ${change.keyId} has no position, but the sink writes ${this.policy.positionColumn}`,
          undefined,
          { domain: 'user', retriable: false },
        );
      columns.push(this.policy.positionColumn);
      values.push(change.position);
    }
    if (this.policy.deletes === 'tombstone') {
      columns.push(this.policy.deletedColumn);
      values.push(change.kind === 'delete');
    }
    // Tombstones update only the managed columns: they share a column list with upserts otherwise.
    if (change.kind === 'delete') columns.push(TOMBSTONE_MARK);
    const signature = columns.join('\u0000');
    let group = groups.get(signature);
    if (group === undefined) groups.set(signature, (group = { columns, rows: [], changes: [] }));
    group.rows.push(values);
    group.changes.push(change);
  }

  private deleteStatements(deletes: readonly KeyedChange[]): { statement: Statement; changes: KeyedChange[] }[] {
    const key = this.primaryKey.map((name) => ({ name, type: this.columnTypes.get(name) as string }));
    const positionColumn = this.policy.positionColumn;
    const unversioned = positionColumn === undefined ? undefined : deletes.find((d) => d.position === undefined);
    if (unversioned !== undefined)
      throw new PostgresSinkError(
        `postgresSink: a delete for key ${unversioned.keyId} has no position, but the sink guards by ${positionColumn as string}`,
        undefined,
        { domain: 'user', retriable: false },
      );
    return chunks([...deletes], this.policy.maxRowsPerStatement * 10).map((chunk) => ({
      statement: deleteStatement(
        this.table,
        key,
        chunk.map((d) => this.primaryKey.map((c) => (d.kind === 'delete' ? d.key[c] : undefined))),
        positionColumn === undefined
          ? undefined
          : {
              column: positionColumn,
              type: this.columnTypes.get(positionColumn) as string,
              positions: chunk.map((d) => d.position as string),
            },
      ),
      changes: chunk,
    }));
  }

  /** Columns the sink sets itself (never taken from rows). */
  managedColumns(): string[] {
    return [
      ...(this.policy.positionColumn === undefined ? [] : [this.policy.positionColumn]),
      ...(this.policy.deletes === 'tombstone' ? [this.policy.deletedColumn] : []),
    ];
  }

  private rowsPerStatement(columnCount: number): number {
    return Math.max(1, Math.min(this.policy.maxRowsPerStatement, Math.floor(MAX_PARAMS / Math.max(1, columnCount))));
  }
}

const TOMBSTONE_MARK = '\u0000tombstone';

function chunks<T>(items: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size));
  return result;
}
