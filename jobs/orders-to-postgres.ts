/**
 * The reference projection into Postgres, exactly once: Debezium orders → keyBy id → upsert →
 * postgresSink (two-phase: a checkpoint's rows appear together when it completes).
 *   DATABASE_URL=postgres://cdcflow:cdcflow@127.0.0.1:15432/cdcflow CDCFLOW_BOUNDED=1 npx tsx jobs/orders-to-postgres.ts
 * Env: as jobs/orders-projection.ts, plus DATABASE_URL, CDCFLOW_PG_TABLE (default orders_projection),
 * CDCFLOW_PG_MODE=idempotent (position-guarded upserts and tombstones, for servers without prepared transactions).
 */
import pg from 'pg';
import { StreamEnvironment, postgresSink } from '../runtime/index.ts';
import { ordersProjectionJob, type Order } from './orders-projection.ts';

const e = process.env;
const [table, mode] = [e['CDCFLOW_PG_TABLE'] ?? 'orders_projection', e['CDCFLOW_PG_MODE'] === 'idempotent' ? 'idempotent' : 'two-phase'] as const;
const print = (line: string) => console.log(`[orders-to-postgres ${process.pid}] ${line}`);
const db = new pg.Client({ connectionString: e['DATABASE_URL'] });
await db.connect();
await db.query(`CREATE TABLE IF NOT EXISTS ${table} (id bigint PRIMARY KEY, customer_id bigint, status text, amount numeric(12,2), currency char(3),
  shipping_address text, notes text, created_at timestamptz, updated_at timestamptz${mode === 'idempotent' ? ', position text, deleted boolean NOT NULL DEFAULT false' : ''})`);
await db.end();

const env = StreamEnvironment.create({
  jobName: e['CDCFLOW_JOB_NAME'] ?? 'orders-to-postgres',
  checkpoints: { intervalMs: 1000, dir: e['CDCFLOW_CHECKPOINT_DIR'] ?? './.cdcflow/checkpoints' },
  state: { backend: 'rocksdb', dir: e['CDCFLOW_STATE_DIR'] ?? './.cdcflow/state' },
  log: print,
});
const sink = postgresSink<number, Order>({ table, primaryKey: ['id'], mode, log: print, onTransaction: (t) => print(`checkpoint ${t.checkpointId} ${t.phase}: ${t.records} rows`) });
const session = e['CDCFLOW_SESSION_TIMEOUT_MS'];
ordersProjectionJob(env, { topic: e['CDCFLOW_TOPIC'] ?? 'cdc.ecommerce.orders', groupId: e['CDCFLOW_GROUP_ID'] ?? 'orders-to-postgres', bounded: e['CDCFLOW_BOUNDED'] === '1', ...(session === undefined ? {} : { sessionTimeoutMs: Number(session) }) }, sink);
const { restarts } = await env.execute();
print(`finished: ${restarts} restarts`);
