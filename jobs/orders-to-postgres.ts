/**
 * The reference projection into Postgres, exactly once: Debezium orders → keyBy id → upsert →
 * postgresSink (two-phase: a checkpoint's rows appear together when it completes).
 *   DATABASE_URL=postgres://cdcflow:cdcflow@127.0.0.1:15432/cdcflow cdcflow run jobs/orders-to-postgres.ts --set bounded=true
 * Settings: as jobs/orders-projection.ts, plus databaseUrl (DATABASE_URL), table (CDCFLOW_PG_TABLE,
 * default orders_projection), mode (CDCFLOW_PG_MODE: two-phase, or idempotent — position-guarded upserts
 * and tombstones, for servers without prepared transactions); decimalHandling and truncate as there.
 */
import pg from 'pg';
import { z } from 'zod';
import { StreamEnvironment, environmentOptions, loadJobConfig, postgresSink } from '../runtime/index.ts';
import { ordersProjectionJob, projectionOptions, projectionSettings, type Order } from './orders-projection.ts';

const config = loadJobConfig({
  name: 'orders-to-postgres',
  settings: projectionSettings.extend({
    databaseUrl: z.string().min(1).meta({ env: 'DATABASE_URL' }).optional(),
    table: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_.]*$/, 'must be a plain (optionally schema-qualified) table name')
      .meta({ env: 'CDCFLOW_PG_TABLE' })
      .default('orders_projection'),
    mode: z.enum(['two-phase', 'idempotent']).meta({ env: 'CDCFLOW_PG_MODE' }).default('two-phase'),
  }),
});
const { databaseUrl, table, mode } = config.settings;
const print = (line: string) => console.log(`[orders-to-postgres ${process.pid}] ${line}`);
const db = new pg.Client({ connectionString: databaseUrl });
await db.connect();
await db.query(`CREATE TABLE IF NOT EXISTS ${table} (id bigint PRIMARY KEY, customer_id bigint, status text, amount numeric(12,2), currency char(3),
  shipping_address text, notes text, created_at timestamptz, updated_at timestamptz${mode === 'idempotent' ? ', position text, deleted boolean NOT NULL DEFAULT false' : ''})`);
await db.end();

const env = StreamEnvironment.create(environmentOptions(config, { log: print }));
const sink = postgresSink<number, Order>({
  table,
  primaryKey: ['id'],
  mode,
  ...(databaseUrl === undefined ? {} : { connectionString: databaseUrl }),
  log: print,
  onTransaction: (t) => print(`checkpoint ${t.checkpointId} ${t.phase}: ${t.records} rows`),
});
ordersProjectionJob(env, projectionOptions(config), sink);
const { restarts } = await env.execute();
print(`finished: ${restarts} restarts`);
