/**
 * The reference projection into Postgres (two-phase) in group mode: start this file on as many
 * machines (or processes) as you like; they share the source topic's partitions through Kafka's
 * consumer group `groupId`, each partition a task of its own with its own checkpoints under
 * `<checkpoint root>/<job>/partitions/` — which must be a directory every process sees (NFS, a
 * shared volume). A process that dies or is paused past `sessionTimeoutMs` loses its partitions
 * to the others, which restore them from their latest checkpoints; the epoch fence keeps it from
 * committing for them if it wakes up (docs/group-mode.md).
 *   DATABASE_URL=postgres://cdcflow:cdcflow@127.0.0.1:15432/cdcflow CDCFLOW_CHECKPOINT_DIR=/shared/checkpoints \
 *     cdcflow run jobs/orders-projection-group.ts        (on each machine; SIGTERM stops with final checkpoints)
 * Settings: as jobs/orders-to-postgres.ts (topic, groupId, sessionTimeoutMs, databaseUrl, table).
 */
import pg from 'pg';
import { z } from 'zod';
import { debeziumSource, environmentOptions, loadJobConfig, postgresSink, runGroupJob } from '../runtime/index.ts';
import { ordersProjectionJob, projectionOptions, projectionSettings, type Order } from './orders-projection.ts';

const config = loadJobConfig({
  name: 'orders-projection-group',
  settings: projectionSettings.extend({
    databaseUrl: z.string().min(1).meta({ env: 'DATABASE_URL' }).optional(),
    table: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_.]*$/, 'must be a plain (optionally schema-qualified) table name')
      .meta({ env: 'CDCFLOW_PG_TABLE' })
      .default('orders_projection'),
  }),
});
const { databaseUrl, table } = config.settings;
const o = projectionOptions(config);
const print = (line: string) => console.log(`[orders-projection-group ${process.pid}] ${line}`);
const db = new pg.Client({ connectionString: databaseUrl });
await db.connect();
// Every process of the job runs this at once: CREATE TABLE IF NOT EXISTS is not safe against a
// concurrent twin (both pass the check, one fails on the catalog's unique index), so serialise it.
await db.query('BEGIN');
await db.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`cdcflow create ${table}`]);
await db.query(`CREATE TABLE IF NOT EXISTS ${table} (id bigint PRIMARY KEY, customer_id bigint, status text, amount numeric(12,2), currency char(3),
  shipping_address text, notes text, created_at timestamptz, updated_at timestamptz)`);
await db.query('COMMIT');
await db.end();

const {
  jobName: _name,
  restore: _restore,
  parallelism: _parallelism,
  ...environment
} = environmentOptions(config, { log: print });
const result = await runGroupJob({
  jobName: config.name,
  groupId: o.groupId,
  topics: [o.topic],
  environment,
  ...(o.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: o.sessionTimeoutMs }),
  log: print,
  build: (env, task) => {
    const where = `${task.topic}-${task.partition} epoch ${task.epoch}`;
    const source = debeziumSource<Order>({
      topics: [task.topic],
      groupId: task.groupId,
      partitionTask: task.source,
      ...(o.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: o.sessionTimeoutMs }),
      ...(o.decimals === undefined ? {} : { decimals: o.decimals }),
    });
    const sink = postgresSink<number, Order>({
      table,
      primaryKey: ['id'],
      ...(databaseUrl === undefined ? {} : { connectionString: databaseUrl }),
      log: (line) => print(`${where}: ${line}`),
      onTransaction: (t) => print(`${where}: checkpoint ${t.checkpointId} ${t.phase}: ${t.records} rows`),
    });
    ordersProjectionJob(env, o, sink, source);
  },
});
print(`finished: ${result.tasksStarted} partition tasks run, ${result.tasksFenced} fenced`);
