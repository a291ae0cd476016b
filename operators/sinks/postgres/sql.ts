/** Quoting and the statements the Postgres sink sends, built as text plus positional parameters. */

export interface Statement {
  readonly sql: string;
  readonly params: unknown[];
}

/** Postgres accepts at most 65535 parameters in one statement. */
export const MAX_PARAMS = 65_535;

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `orders` or `schema.orders` (unquoted names; each part is quoted as given). */
export function quoteTable(table: string): string {
  const parts = table.split('.');
  if (parts.length > 2 || parts.some((p) => p === ''))
    throw new Error(`table '${table}' must be 'name' or 'schema.name'`);
  return parts.map(quoteIdent).join('.');
}

export function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/**
 * `INSERT ... ON CONFLICT (pk) DO UPDATE SET ... [WHERE target.position < EXCLUDED.position]`. With column
 * types the rows go in as one array per column (`SELECT * FROM unnest($1::bigint[], ...)`): a
 * handful of parameters whatever the batch size, and about 1.5x the speed of a multi-row VALUES
 * list, which is used without types (array and json columns: a JS array value would be read as a
 * nested array).
 */
export function upsertStatement(
  table: string,
  primaryKey: readonly string[],
  columns: readonly string[],
  rows: readonly (readonly unknown[])[],
  update: readonly string[],
  guardColumn: string | undefined,
  types?: readonly string[],
): Statement {
  const params: unknown[] = [];
  let source: string;
  if (types === undefined) {
    const tuples = rows.map((row) => `(${row.map((value) => (params.push(value), `$${params.length}`)).join(', ')})`);
    source = `VALUES ${tuples.join(', ')}`;
  } else {
    params.push(...columns.map((_, i) => rows.map((row) => row[i])));
    source = `SELECT * FROM unnest(${types.map((type, i) => `$${i + 1}::${type}[]`).join(', ')})`;
  }
  const target = `${table} AS target (${columns.map(quoteIdent).join(', ')})`;
  const conflict = `ON CONFLICT (${primaryKey.map(quoteIdent).join(', ')})`;
  if (update.length === 0) return { sql: `INSERT INTO ${target} ${source} ${conflict} DO NOTHING`, params };
  const set = update.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`).join(', ');
  const guard =
    guardColumn === undefined
      ? ''
      : ` WHERE ${positionGuard(`target.${quoteIdent(guardColumn)}`, `EXCLUDED.${quoteIdent(guardColumn)}`)}`;
  return { sql: `INSERT INTO ${target} ${source} ${conflict} DO UPDATE SET ${set}${guard}`, params };
}

/**
 * `DELETE ... USING unnest($1::type[], ...)`: one parameter per key column whatever the batch
 * size, typed by the column so composite keys of any type compare correctly.
 */
export function deleteStatement(
  table: string,
  key: readonly { readonly name: string; readonly type: string }[],
  keys: readonly (readonly unknown[])[],
  guard: { readonly column: string; readonly type: string; readonly positions: readonly string[] } | undefined,
): Statement {
  const params: unknown[] = key.map((_, i) => keys.map((k) => k[i]));
  const arrays = key.map((c, i) => `$${i + 1}::${c.type}[]`);
  const aliases = key.map((_, i) => `k${i}`);
  const match = key.map((c, i) => `target.${quoteIdent(c.name)} = d.k${i}`);
  if (guard !== undefined) {
    params.push(guard.positions);
    arrays.push(`$${params.length}::${guard.type}[]`);
    aliases.push('pos');
    match.push(`(${positionGuard(`target.${quoteIdent(guard.column)}`, 'd.pos')})`);
  }
  return {
    sql: `DELETE FROM ${table} AS target USING unnest(${arrays.join(', ')}) AS d(${aliases.join(', ')}) WHERE ${match.join(' AND ')}`,
    params,
  };
}

/** Positions are fixed-width text in commit order byte by byte: compare them in the C collation. */
function positionGuard(current: string, incoming: string): string {
  return `${current} IS NULL OR ${current} COLLATE "C" < ${incoming} COLLATE "C"`;
}
