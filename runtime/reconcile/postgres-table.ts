/**
 * One side of a reconcile in Postgres: its columns and key, and its rows in key order, read in
 * keyset-paginated chunks (`WHERE key > last ORDER BY key LIMIT n`) inside one REPEATABLE READ,
 * READ ONLY transaction, so the side is read as of one moment and memory holds one chunk.
 * Every value is read as Postgres's text output (no JS number or Date conversion) and normalised
 * later by normalize.ts.
 */
import pg from 'pg';
import type { ReconcileRow } from './compare.ts';
import { ReconcileError } from './errors.ts';
import { kindOfType, type ColumnKind } from './normalize.ts';

export interface TableColumn {
  readonly name: string;
  readonly type: string;
  readonly kind: ColumnKind;
}

const rawText = { getTypeParser: () => (value: string) => value };

/** `orders`, `public.orders` or `"Mixed Case"` as a quoted, qualified identifier. */
export function quoteTable(table: string): string {
  if (table.includes('"')) return table;
  return table
    .split('.')
    .map((part) => pg.escapeIdentifier(part))
    .join('.');
}

export class PostgresTable {
  private constructor(
    private readonly client: pg.Client,
    readonly table: string,
    readonly columns: readonly TableColumn[],
    readonly primaryKey: readonly string[],
    private readonly where: string | undefined,
  ) {}

  /** Connects, starts the read transaction and reads the table's shape. */
  static async open(url: string, table: string, where?: string): Promise<PostgresTable> {
    const client = new pg.Client({ connectionString: url, application_name: 'cdcflow-reconcile' });
    try {
      await client.connect();
    } catch (error) {
      throw new ReconcileError(`reconcile: cannot connect to ${redact(url)}: ${String(error)}`, {
        domain: 'external',
        retriable: true,
        cause: error,
      });
    }
    try {
      await client.query("SET TimeZone = 'UTC'");
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const found = await client.query<{ oid: string }>('SELECT to_regclass($1)::oid::text AS oid', [
        quoteTable(table),
      ]);
      const oid = found.rows[0]?.oid;
      if (oid === undefined || oid === null)
        throw new ReconcileError(`reconcile: no table ${table} in ${redact(url)}`, { domain: 'user' });
      const cols = await client.query<{ name: string; type: string; typname: string }>(
        `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, t.typname
           FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
          WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
        [oid],
      );
      const pk = await client.query<{ name: string }>(
        `SELECT a.attname AS name FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE i.indrelid = $1::oid AND i.indisprimary ORDER BY k.n`,
        [oid],
      );
      const columns = cols.rows.map((c) => ({ name: c.name, type: c.type, kind: kindOfType(c.typname) }));
      return new PostgresTable(
        client,
        table,
        columns,
        pk.rows.map((r) => r.name),
        where,
      );
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
  }

  column(name: string): TableColumn | undefined {
    return this.columns.find((c) => c.name === name);
  }

  /**
   * The rows in key order, `chunk` at a time. Text-like keys sort with COLLATE "C" so the order
   * matches compareKeys' byte order on both sides.
   */
  async *rows(
    key: readonly string[],
    keyKinds: readonly ColumnKind[],
    compared: readonly string[],
    chunk: number,
  ): AsyncGenerator<ReconcileRow> {
    // Qualified by the alias, so ORDER BY sorts the column itself, not the ::text output of the same name.
    const keyExpr = key.map((k, i) =>
      keyKinds[i] === 'integer' ? `t.${pg.escapeIdentifier(k)}` : `t.${pg.escapeIdentifier(k)}::text COLLATE "C"`,
    );
    const select = [
      ...key.map((k, i) => `t.${pg.escapeIdentifier(k)}::text AS key_${i}`),
      ...compared.map((c) => `t.${pg.escapeIdentifier(c)}`),
    ].join(', ');
    const order = keyExpr.join(', ');
    const filter = this.where === undefined ? '' : `(${this.where})`;
    let last: readonly string[] | undefined;
    for (;;) {
      const conditions: string[] = [];
      const values: unknown[] = [];
      if (filter !== '') conditions.push(filter);
      if (last !== undefined) {
        const params = last.map((v, i) => {
          values.push(v);
          return keyKinds[i] === 'integer'
            ? `$${i + 1}::${this.column(key[i] as string)?.type ?? 'bigint'}`
            : `$${i + 1}::text COLLATE "C"`;
        });
        conditions.push(`(${order}) > (${params.join(', ')})`);
      }
      const text = `SELECT ${select} FROM ${quoteTable(this.table)} AS t${conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : ''} ORDER BY ${order} LIMIT ${chunk}`;
      const result = await this.client.query<unknown[]>({ text, values, rowMode: 'array', types: rawText });
      for (const row of result.rows) {
        const cells = row as (string | null)[];
        yield { key: cells.slice(0, key.length) as string[], values: cells.slice(key.length) };
      }
      if (result.rows.length < chunk) return;
      last = (result.rows[result.rows.length - 1] as string[]).slice(0, key.length);
    }
  }

  async close(): Promise<void> {
    await this.client.query('COMMIT').catch(() => undefined);
    await this.client.end().catch(() => undefined);
  }
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}
