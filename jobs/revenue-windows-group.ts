/**
 * The reference revenue windows (WORKLOAD.md, job 2) in group mode: start this file on as many
 * machines (or processes) as you like. Two stages, both running in every process, joined by an
 * internal transactional topic (Kafka Streams' repartition model, docs/group-mode.md):
 *   1. `by-status`: a task per partition of the Debezium topic keeps c/u/r events and writes them,
 *      keyed by `after.status`, to `<job>-by-status-repartition` with the two-phase Kafka sink
 *      (committed when the task's checkpoint completes), with its source partition's watermark
 *      (out-of-orderness 5 s) in every record and in watermark-only control records.
 *   2. `windows`: a task per partition of that topic reads it read_committed, keyed windows per
 *      status (tumbling 1 min on source.ts_ms, watermark = the minimum of the carried upstream
 *      watermarks, allowed lateness 30 s), window
 *      results upserted into Postgres (two-phase), late events into `<table>_late` (two-phase).
 *   DATABASE_URL=… CDCFLOW_CHECKPOINT_DIR=/shared/checkpoints cdcflow run jobs/revenue-windows-group.ts
 * Settings: as jobs/orders-projection.ts (topic, groupId, sessionTimeoutMs), plus databaseUrl,
 * table (CDCFLOW_PG_TABLE, default revenue_windows) and idlenessMs (CDCFLOW_IDLENESS_MS).
 */
import pg from 'pg';
import { z } from 'zod';
import {
  RepartitionTopic,
  WatermarkStrategy,
  debeziumSource,
  decimalSum,
  environmentOptions,
  loadJobConfig,
  postgresSink,
  runGroupStages,
  type ChangeEvent,
} from '../runtime/index.ts';
import { projectionOptions, projectionSettings } from './orders-projection.ts';
import {
  ALLOWED_LATENESS_MS,
  LATE_ORDERS,
  OUT_OF_ORDERNESS_MS,
  REVENUE_WINDOWS,
  revenueWindowOf,
  type Order,
} from './revenue-windows.ts';

const config = loadJobConfig({
  name: 'revenue-windows-group',
  settings: projectionSettings.extend({
    databaseUrl: z.string().min(1).meta({ env: 'DATABASE_URL' }).optional(),
    table: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a plain table name')
      .meta({ env: 'CDCFLOW_PG_TABLE' })
      .default('revenue_windows'),
    idlenessMs: z.number().int().positive().meta({ env: 'CDCFLOW_IDLENESS_MS' }).default(30_000),
  }),
});
const { databaseUrl, table, idlenessMs } = config.settings;
const o = projectionOptions(config);
const print = (line: string) => console.log(`[revenue-windows-group ${process.pid}] ${line}`);
const lateTable = `${table}_late`;

const db = new pg.Client({ connectionString: databaseUrl });
await db.connect();
await db.query(`CREATE TABLE IF NOT EXISTS ${table} (window_start bigint, window_end bigint NOT NULL, status text,
  sum numeric NOT NULL, count bigint NOT NULL, PRIMARY KEY (window_start, status))`);
// Keyed by where the late event sits in the repartition topic: stable across replays (read_committed).
await db.query(`CREATE TABLE IF NOT EXISTS ${lateTable} (part int, "offset" bigint, id text, lsn bigint NOT NULL,
  ts_ms bigint NOT NULL, status text NOT NULL, window_start bigint NOT NULL, PRIMARY KEY (part, "offset"))`);
await db.end();

const byStatus = new RepartitionTopic({ jobName: config.name, name: 'by-status' });
// As many downstream tasks as upstream ones, unless the topic already exists (then it stays).
const upstreamPartitions = await byStatus.partitionsOf(o.topic);
const partitions = await byStatus.ensure(upstreamPartitions);
print(`repartition topic ${byStatus.topic}: ${partitions} partitions`);

const {
  jobName: _name,
  restore: _restore,
  parallelism: _parallelism,
  ...environment
} = environmentOptions(config, {
  log: print,
});
const connection = databaseUrl === undefined ? {} : { connectionString: databaseUrl };
const sourceOptions = (topic: string, task: { groupId: string; source: { partition: number; epoch: number } }) => ({
  topics: [topic],
  groupId: task.groupId,
  partitionTask: task.source,
  ...(o.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: o.sessionTimeoutMs }),
  ...(o.decimals === undefined ? {} : { decimals: o.decimals }),
});

/** Both stages: the bound decides lateness upstream (per source partition), idleness in both. */
const revenueWatermarks = () =>
  WatermarkStrategy.boundedOutOfOrderness<ChangeEvent<Order>>(OUT_OF_ORDERNESS_MS)
    .withTimestamps((e) => e.source.tsMs)
    .withIdleness(idlenessMs);

const result = await runGroupStages({
  jobName: config.name,
  groupId: o.groupId,
  environment,
  ...(o.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: o.sessionTimeoutMs }),
  log: print,
  stages: [
    {
      name: 'by-status',
      topics: [o.topic],
      build: (env, task) => {
        env
          // Event time starts here: the repartition sink carries this task's watermark downstream.
          .fromSource(debeziumSource<Order>(sourceOptions(task.topic, task)), {
            uid: 'orders-source',
            watermarks: revenueWatermarks(),
          })
          .filter((e) => (e.op === 'c' || e.op === 'u' || e.op === 'r') && e.after !== null)
          // One upstream task per source partition: each windows task waits to hear from all of them.
          .sinkTo(byStatus.sink<Order>((e) => (e.after as Order).status, { upstreamTasks: upstreamPartitions }))
          .uid('by-status-repartition');
      },
    },
    {
      name: 'windows',
      topics: [byStatus.topic],
      build: (env, task) => {
        const where = `${task.topic}-${task.partition} epoch ${task.epoch}`;
        const revenue = env
          .fromSource(debeziumSource<Order>(sourceOptions(task.topic, task)), {
            uid: 'by-status-source',
            // The internal topic carries the upstream watermarks; the bound applies upstream, idleness here too.
            watermarks: revenueWatermarks(),
          })
          .keyBy((e) => (e.after as Order).status)
          .window(REVENUE_WINDOWS)
          .allowedLateness(ALLOWED_LATENESS_MS)
          .sideOutputLateData(LATE_ORDERS)
          .aggregate(decimalSum((e) => (e.after as Order).amount))
          .uid('revenue-windows');
        revenue
          .map((r) => ({
            window_start: r.window.start,
            window_end: r.window.end,
            status: r.key,
            sum: r.result.sum,
            count: r.result.count,
          }))
          .uid('revenue-rows')
          .sinkTo(
            postgresSink<Record<string, unknown>>({
              table,
              primaryKey: ['window_start', 'status'],
              toChange: (row) => ({ kind: 'upsert', row }),
              ...connection,
              log: (line) => print(`${where}: ${line}`),
              onTransaction: (t) =>
                print(`${where}: checkpoint ${t.checkpointId} ${t.phase}: ${t.records} window rows`),
            }),
          )
          .uid('revenue-windows-postgres');
        revenue
          .getSideOutput(LATE_ORDERS)
          .map((e) => ({
            part: e.origin.partition,
            offset: e.origin.offset,
            id: JSON.stringify(e.key),
            lsn: e.source.lsn,
            ts_ms: e.source.tsMs,
            status: (e.after as Order).status,
            window_start: revenueWindowOf(e).start,
          }))
          .uid('late-rows')
          .sinkTo(
            postgresSink<Record<string, unknown>>({
              table: lateTable,
              primaryKey: ['part', 'offset'],
              toChange: (row) => ({ kind: 'upsert', row }),
              ...connection,
              name: 'late-postgres',
            }),
          )
          .uid('late-postgres');
      },
    },
  ],
});
print(
  `finished: ${Object.entries(result.stages)
    .map(([stage, r]) => `${stage} ${r.tasksStarted} tasks run, ${r.tasksFenced} fenced`)
    .join('; ')}`,
);
