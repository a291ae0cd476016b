/**
 * What the orders chaos and outage tests compare at the end: a sink's rows against the projection
 * oracle (scripts/workload/oracle.ts) — lost ids, extra ids (duplicated or resurrected) and stale
 * rows (present with the wrong values) — read from a Postgres table or from a compacted Kafka
 * topic (the latest record per key, a null value deleting it).
 */
import pg from 'pg';
import type { OrderRow } from '../../scripts/workload/orders-model.ts';

/** A row of the orders projection table, timestamps as epoch milliseconds. */
export interface OrdersTableRow {
  readonly id: number;
  readonly customer_id: number;
  readonly status: string;
  readonly amount: string;
  readonly currency: string;
  readonly shipping_address: string;
  readonly notes: string;
  readonly created_ms: number;
  readonly updated_ms: number;
}

export interface OracleDifferences {
  readonly lost: number[];
  readonly extra: number[];
  readonly stale: string[];
}

/** The table's rows by id, and the prepared transactions whose gid starts with `<gidPrefix>:`. */
export async function readOrdersTable(
  databaseUrl: string,
  table: string,
  gidPrefix: string,
): Promise<{ rows: Map<number, OrdersTableRow>; prepared: string[] }> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<OrdersTableRow>(
      `select id::int, customer_id::int, status, amount::text, currency, shipping_address, notes,
        (extract(epoch from created_at) * 1000)::float8 as created_ms, (extract(epoch from updated_at) * 1000)::float8 as updated_ms from ${table}`,
    );
    const prepared = (
      await db.query<{ gid: string }>('select gid from pg_prepared_xacts where left(gid, length($1)) = $1', [
        `${gidPrefix}:`,
      ])
    ).rows.map((r) => r.gid);
    return { rows: new Map(rows.map((r) => [r.id, r])), prepared };
  } finally {
    await db.end();
  }
}

/** Table rows against the oracle, every column compared. */
export function tableDifferences(
  actual: ReadonlyMap<number, OrdersTableRow>,
  oracle: ReadonlyMap<number, OrderRow>,
): OracleDifferences {
  const fields = [
    'customer_id',
    'status',
    'amount',
    'currency',
    'shipping_address',
    'notes',
    'created_ms',
    'updated_ms',
  ] as const;
  return differences(actual, oracle, (got, want) => {
    const expected = { ...want, created_ms: Date.parse(want.created_at), updated_ms: Date.parse(want.updated_at) };
    return fields
      .filter((f) => got[f] !== expected[f])
      .map((f) => `${f} ${JSON.stringify(got[f])} ≠ ${JSON.stringify(expected[f])}`);
  });
}

/** Rows as the Kafka sink writes them (`JSON.stringify(row)`, the Debezium `after` image), by id. */
export function rowDifferences(
  actual: ReadonlyMap<number, Readonly<Record<string, unknown>>>,
  oracle: ReadonlyMap<number, OrderRow>,
): OracleDifferences {
  return differences(actual, oracle, (got, want) =>
    (Object.keys(want) as (keyof OrderRow)[])
      .filter((f) => JSON.stringify(got[f]) !== JSON.stringify(want[f]))
      .map((f) => `${f} ${JSON.stringify(got[f])} ≠ ${JSON.stringify(want[f])}`),
  );
}

/** Lost and extra ids, and for every id present on both sides what `wrongFields` finds off. */
function differences<Row>(
  actual: ReadonlyMap<number, Row>,
  oracle: ReadonlyMap<number, OrderRow>,
  wrongFields: (got: Row, want: OrderRow) => string[],
): OracleDifferences {
  const lost: number[] = [];
  const stale: string[] = [];
  for (const [id, want] of oracle) {
    const got = actual.get(id);
    if (got === undefined) {
      lost.push(id);
      continue;
    }
    const wrong = wrongFields(got, want);
    if (wrong.length > 0) stale.push(`id ${id}: ${wrong.join(', ')}`);
  }
  const extra = [...actual.keys()].filter((id) => !oracle.has(id));
  return { lost, extra, stale };
}

/** Drops a test's orders table and the commit markers its job's Postgres sink left. */
/**
 * Rolls back every transaction still prepared under `gidPrefix`. A failed run's leftovers would
 * otherwise outlive it in the server: they hold their locks, and a logical replication slot
 * cannot be created while any prepared transaction is open (every real-Debezium test after it
 * times out waiting for its snapshot).
 */
export async function rollbackPreparedOf(databaseUrl: string, gidPrefix: string): Promise<string[]> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<{ gid: string }>(
      'SELECT gid FROM pg_prepared_xacts WHERE left(gid, length($1)) = $1',
      [gidPrefix],
    );
    for (const { gid } of rows) await db.query(`ROLLBACK PREPARED '${gid.replace(/'/g, "''")}'`).catch(() => undefined);
    return rows.map((r) => r.gid);
  } finally {
    await db.end();
  }
}

export async function dropOrdersTable(databaseUrl: string, table: string, jobName: string): Promise<void> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    await db.query(`drop table if exists ${table}`);
    await db.query("delete from cdcflow_sink_commits where sink like $1 || ':%'", [jobName]).catch(() => undefined);
  } finally {
    await db.end();
  }
}
