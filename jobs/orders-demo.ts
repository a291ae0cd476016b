/**
 * The demo job (scripts/demo.ts): one Debezium orders topic, two results, both exactly once into
 * Postgres through two-phase sinks:
 *  - the projection: keyBy id → upsert → table CDCFLOW_PG_TABLE (the source table's columns);
 *  - revenue: c/u/r events → keyBy status → tumbling 1-minute windows on source.ts_ms (5 s
 *    out-of-orderness, 30 s allowed lateness) → exact decimal sum and count → table
 *    CDCFLOW_REVENUE_TABLE; events later than that → table CDCFLOW_LATE_TABLE (the late side output).
 * Settings: as jobs/orders-projection.ts, plus databaseUrl (DATABASE_URL) and the three tables
 * (CDCFLOW_PG_TABLE, CDCFLOW_REVENUE_TABLE, CDCFLOW_LATE_TABLE).
 */
import pg from 'pg';
import { z } from 'zod';
import {
  StreamEnvironment,
  WatermarkStrategy,
  debeziumSource,
  decimalSum,
  environmentOptions,
  loadJobConfig,
  postgresSink,
  type DecimalSum,
  type WindowResult,
} from '../runtime/index.ts';
import { projectionOptions, projectionSettings, type Order } from './orders-projection.ts';
import {
  ALLOWED_LATENESS_MS,
  LATE_ORDERS,
  OUT_OF_ORDERNESS_MS,
  REVENUE_WINDOWS,
  type OrderEvent,
} from './revenue-windows.ts';

const config = loadJobConfig({
  name: 'orders-demo',
  settings: projectionSettings.extend({
    databaseUrl: z.string().min(1).meta({ env: 'DATABASE_URL' }).optional(),
    table: z.string().min(1).meta({ env: 'CDCFLOW_PG_TABLE' }),
    revenueTable: z.string().min(1).meta({ env: 'CDCFLOW_REVENUE_TABLE' }),
    lateTable: z.string().min(1).meta({ env: 'CDCFLOW_LATE_TABLE' }),
  }),
});
const { databaseUrl, table: ordersTable, revenueTable, lateTable } = config.settings;
const { topic, groupId, bounded } = projectionOptions(config);
const print = (line: string) => console.log(`[orders-demo ${process.pid}] ${line}`);

const db = new pg.Client({ connectionString: databaseUrl });
await db.connect();
await db.query(`CREATE TABLE IF NOT EXISTS ${ordersTable} (id bigint PRIMARY KEY, customer_id bigint, status text, amount numeric(12,2), currency char(3),
  shipping_address text, notes text, created_at timestamptz, updated_at timestamptz)`);
await db.query(
  `CREATE TABLE IF NOT EXISTS ${revenueTable} (window_start timestamptz, window_end timestamptz, status text, revenue numeric(20,2), orders bigint, firing text, update_count int, PRIMARY KEY (window_start, status))`,
);
await db.query(
  `CREATE TABLE IF NOT EXISTS ${lateTable} (id bigint, lsn bigint, op text, source_ts timestamptz, amount numeric(12,2), PRIMARY KEY (lsn, id))`,
);
await db.end();

const env = StreamEnvironment.create(environmentOptions(config, { log: print }));
const events = env.fromSource(
  debeziumSource<Order>({
    topics: [topic],
    groupId,
    sessionTimeoutMs: 6000,
    ...(bounded ? { bounded: 'latest' as const } : {}),
  }),
  {
    uid: 'orders-source',
    watermarks: WatermarkStrategy.boundedOutOfOrderness<OrderEvent>(OUT_OF_ORDERNESS_MS).withTimestamps(
      (ev) => ev.source.tsMs,
    ),
  },
);

events
  .keyBy((ev) => ev.key?.['id'] as number)
  .upsert()
  .uid('orders-upsert')
  .sinkTo(
    postgresSink<number, Order>({
      name: 'orders',
      table: ordersTable,
      primaryKey: ['id'],
      log: print,
      onTransaction: (t) => print(`orders checkpoint ${t.checkpointId} ${t.phase}: ${t.records} rows`),
    }),
  );

const revenue = events
  .filter((ev) => (ev.op === 'c' || ev.op === 'u' || ev.op === 'r') && ev.after !== null)
  .keyBy((ev) => (ev.after as Order).status)
  .window(REVENUE_WINDOWS)
  .allowedLateness(ALLOWED_LATENESS_MS)
  .sideOutputLateData(LATE_ORDERS)
  .aggregate(decimalSum((ev) => (ev.after as Order).amount))
  .uid('revenue-windows');

revenue.sinkTo(
  postgresSink<WindowResult<string, DecimalSum>>({
    name: 'revenue',
    table: revenueTable,
    primaryKey: ['window_start', 'status'],
    log: print,
    toChange: (r) => ({
      kind: 'upsert',
      row: {
        window_start: new Date(r.window.start),
        window_end: new Date(r.window.end),
        status: r.key,
        revenue: r.result.sum,
        orders: r.result.count,
        firing: r.firing,
        update_count: r.updateCount,
      },
    }),
  }),
);
revenue.getSideOutput(LATE_ORDERS).sinkTo(
  postgresSink<OrderEvent>({
    name: 'late',
    table: lateTable,
    primaryKey: ['lsn', 'id'],
    log: print,
    toChange: (ev) => ({
      kind: 'upsert',
      row: {
        id: ev.key?.['id'],
        lsn: ev.source.lsn,
        op: ev.op,
        source_ts: new Date(ev.source.tsMs),
        amount: (ev.after as Order | null)?.amount ?? null,
      },
    }),
  }),
);

const { restarts } = await env.execute();
print(`finished: ${restarts} restarts`);
