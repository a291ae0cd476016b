/**
 * Writes a batch of keyed changes (at most one per primary key) into the target table with as
 * few statements as possible: `INSERT ... SELECT * FROM unnest(...) ON CONFLICT DO UPDATE` per
 * column set (multi-row VALUES for array and json columns), and one
 * `DELETE ... USING unnest(...)` (or tombstone upserts) for the deletes.
 */
import type { ChangePosition } from '../../../state/index.ts';
import { PostgresSinkError, sqlStateOf, type PgSession } from './pg-session.ts';
import { MAX_PARAMS, deleteStatement, quoteTable, upsertStatement, type Statement } from './sql.ts';

type Row = Readonly<Record<string, unknown>>;

/** One change, normalised: `keyId` identifies the primary key (JSON of its values). */
export type KeyedChange =
  | { readonly kind: 'upsert'; readonly keyId: string; readonly row: Row; readonly position: ChangePosition | undefined; readonly sourceTsMs: number | undefined }
  | { readonly kind: 'delete'; readonly keyId: string; readonly key: Row; readonly previous: Row | null; readonly position: ChangePosition | undefined; readonly sourceTsMs: number | undefined };

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
  ) {}

  /** Reads the table's columns; fails with a message that names what is missing. */
  static async describe(session: PgSession, table: string, primaryKey: readonly string[], policy: WritePolicy): Promise<TableWriter> {
    const quoted = quoteTable(table);
    let rows: { name: string; type: string }[];
    try {
      rows = (
        await session.query<{ name: string; type: string }>(
          'SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum',
          [quoted],
        )
      ).rows;
    } catch (error) {
      if (sqlStateOf(error) === '42P01') throw new PostgresSinkError(`postgresSink: table ${table} does not exist; create it first`, '42P01', { domain: 'user', retriable: false, cause: error });
      throw error;
    }
    const types = new Map(rows.map((r) => [r.name, r.type]));
    const required = [...primaryKey, ...(policy.positionColumn === undefined ? [] : [policy.positionColumn]), ...(policy.deletes === 'tombstone' ? [policy.deletedColumn] : [])];
    const missing = required.filter((c) => !types.has(c));
    if (missing.length > 0) {
      throw new PostgresSinkError(`postgresSink: table ${table} has no column(s) ${missing.join(', ')} (columns: ${[...types.keys()].join(', ')})`, undefined, { domain: 'user', retriable: false });
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
    return new TableWriter(quoted, primaryKey, types, policy);
  }

  /** Applies `changes` (distinct keys) in the session's current transaction. */
  async apply(session: PgSession, changes: readonly KeyedChange[]): Promise<void> {
    for (const statement of this.statements(changes)) await session.query(statement.sql, statement.params);
  }

  statements(changes: readonly KeyedChange[]): Statement[] {
    const upserts = new Map<string, { columns: string[]; rows: unknown[][] }>();
    const deletes: KeyedChange[] = [];
    for (const change of changes) {
      if (change.kind === 'delete' && this.policy.deletes === 'delete') deletes.push(change);
      else this.addRow(upserts, change);
    }
    const statements: Statement[] = [];
    for (const { columns, rows } of upserts.values()) {
      const tombstones = columns[columns.length - 1] === TOMBSTONE_MARK;
      const cols = tombstones ? columns.slice(0, -1) : columns;
      const update = tombstones ? this.managedColumns() : cols.filter((c) => !this.primaryKey.includes(c));
      const types = cols.map((c) => this.columnTypes.get(c) as string);
      const typed = types.every((t) => !t.endsWith('[]') && t !== 'json' && t !== 'jsonb');
      const size = typed ? this.policy.maxRowsPerStatement : this.rowsPerStatement(cols.length);
      for (const chunk of chunks(rows, size)) {
        statements.push(upsertStatement(this.table, this.primaryKey, cols, chunk, update, this.policy.positionColumn, typed ? types : undefined));
      }
    }
    if (deletes.length > 0) statements.push(...this.deleteStatements(deletes));
    return statements;
  }

  private addRow(groups: Map<string, { columns: string[]; rows: unknown[][] }>, change: KeyedChange): void {
    const managed = this.managedColumns();
    const source = change.kind === 'upsert' ? change.row : { ...(change.previous ?? {}), ...change.key };
    const columns = Object.keys(source).filter((c) => this.columnTypes.has(c) && !managed.includes(c));
    const values: unknown[] = columns.map((c) => source[c]);
    if (this.policy.positionColumn !== undefined) {
      if (change.position === undefined) throw new PostgresSinkError(`postgresSink: a change for key ${change.keyId} has no position, but the sink writes ${this.policy.positionColumn}`, undefined, { domain: 'user', retriable: false });
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
    if (group === undefined) groups.set(signature, (group = { columns, rows: [] }));
    group.rows.push(values);
  }

  private deleteStatements(deletes: readonly KeyedChange[]): Statement[] {
    const key = this.primaryKey.map((name) => ({ name, type: this.columnTypes.get(name) as string }));
    const positionColumn = this.policy.positionColumn;
    const unversioned = positionColumn === undefined ? undefined : deletes.find((d) => d.position === undefined);
    if (unversioned !== undefined) throw new PostgresSinkError(`postgresSink: a delete for key ${unversioned.keyId} has no position, but the sink guards by ${positionColumn as string}`, undefined, { domain: 'user', retriable: false });
    return chunks([...deletes], this.policy.maxRowsPerStatement * 10).map((chunk) =>
      deleteStatement(
        this.table,
        key,
        chunk.map((d) => this.primaryKey.map((c) => (d.kind === 'delete' ? d.key[c] : undefined))),
        positionColumn === undefined ? undefined : { column: positionColumn, type: this.columnTypes.get(positionColumn) as string, positions: chunk.map((d) => d.position as string) },
      ),
    );
  }

  /** Columns the sink sets itself (never taken from rows). */
  private managedColumns(): string[] {
    return [...(this.policy.positionColumn === undefined ? [] : [this.policy.positionColumn]), ...(this.policy.deletes === 'tombstone' ? [this.policy.deletedColumn] : [])];
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
