/**
 * Late events report, for analysts: the revenue windows (jobs/revenue-windows.ts), plus what came
 * too late for them, all exactly once:
 * - every event beyond the allowed lateness → Kafka topic `lateTopic` (transactional; read it
 *   with isolation.level=read_committed): the Debezium event as JSON, keyed by the order id;
 * - per window it would have belonged to and status, how many events came too late → Postgres
 *   `lateCountsTable` (two-phase), a running count; the window results → `windowsTable`;
 *   {@link reportQuery} shows both side by side. It is a FULL OUTER JOIN: a window whose every
 *   event came late has a late count and no window row, which a LEFT JOIN from the windows hid
 *   (116 of 147 late events in one run).
 *   DATABASE_URL=… KAFKA_BROKERS=… cdcflow run jobs/late-events-report.ts --set bounded=true
 */
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { z } from 'zod';
import {
  StreamEnvironment,
  debeziumSource,
  environmentOptions,
  kafkaSink,
  loadJobConfig,
  postgresSink,
  valueState,
  type SourceDefinition,
} from '../runtime/index.ts';
import { projectionOptions, projectionSettings } from './orders-projection.ts';
import { revenueWindowOf, revenueWindows, type Order, type OrderEvent } from './revenue-windows.ts';

export interface LateEventsReportOptions {
  readonly brokers: readonly string[];
  /** Create it first (the broker may not auto-create topics); 3 partitions are plenty. */
  readonly lateTopic: string;
  readonly windowsTable: string;
  readonly lateCountsTable: string;
}

/** The two tables, keyed by (window_start, status). */
export const reportTablesDdl = (o: LateEventsReportOptions): string[] => [
  `CREATE TABLE IF NOT EXISTS ${o.windowsTable} (window_start timestamptz, window_end timestamptz NOT NULL, status text, sum numeric NOT NULL, count bigint NOT NULL, PRIMARY KEY (window_start, status))`,
  `CREATE TABLE IF NOT EXISTS ${o.lateCountsTable} (window_start timestamptz, window_end timestamptz NOT NULL, status text, late_count bigint NOT NULL, PRIMARY KEY (window_start, status))`,
];

/**
 * Windows and their late counts side by side: every window with a result, a late count, or both
 * (`sum`/`count` NULL when no event was on time, `late_count` 0 when none was late).
 */
export const reportQuery = (o: Pick<LateEventsReportOptions, 'windowsTable' | 'lateCountsTable'>): string =>
  `SELECT window_start, COALESCE(w.window_end, l.window_end) AS window_end, status, w.sum, w.count, COALESCE(l.late_count, 0) AS late_count
     FROM ${o.windowsTable} w FULL OUTER JOIN ${o.lateCountsTable} l USING (window_start, status)
    ORDER BY window_start, status`;

const iso = (ms: number) => new Date(ms).toISOString();
/** Two-phase: a checkpoint's rows appear when it completes; a later row for a key replaces the earlier. */
const upsertInto = <Row extends Readonly<Record<string, unknown>>>(table: string) =>
  postgresSink<Row>({ table, primaryKey: ['window_start', 'status'], toChange: (row) => ({ kind: 'upsert', row }) });

export function lateEventsReportJob(
  env: StreamEnvironment,
  source: SourceDefinition<OrderEvent>,
  options: LateEventsReportOptions,
): void {
  const { rows, late } = revenueWindows(env, source);
  // A late update re-fires a window; the upsert keeps the latest result.
  rows
    .map((r) => ({
      window_start: iso(r.windowStart),
      window_end: iso(r.windowEnd),
      status: r.status,
      sum: r.sum,
      count: r.count,
    }))
    .sinkTo(upsertInto(options.windowsTable))
    .uid('revenue-windows-postgres');
  late
    .sinkTo(
      kafkaSink({
        brokers: options.brokers,
        topic: options.lateTopic,
        serialize: (e) => ({ key: JSON.stringify(e.key), value: JSON.stringify(e) }),
      }),
    )
    .uid('late-events-kafka');
  // The window operator dropped a late event's window already, so late counts live in their own
  // keyed state: per (window the event belongs to by its commit time, status), one running count.
  late
    .keyBy((e) => [revenueWindowOf(e).start, (e.after as Order).status] as const)
    .process({
      state: { count: valueState<number>() },
      processElement(event, ctx, out) {
        const lateCount = (ctx.state.count.value() ?? 0) + 1;
        ctx.state.count.update(lateCount);
        const window = revenueWindowOf(event);
        out.emit({
          window_start: iso(window.start),
          window_end: iso(window.end),
          status: ctx.key[1],
          late_count: lateCount,
        });
      },
    })
    .uid('late-counts')
    .sinkTo(upsertInto(options.lateCountsTable))
    .uid('late-counts-postgres');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const settings = projectionSettings.extend({
    brokers: z.string().min(1).meta({ env: 'KAFKA_BROKERS' }).default('127.0.0.1:19092'),
    databaseUrl: z.string().meta({ env: 'DATABASE_URL' }).optional(),
  });
  const config = loadJobConfig({ name: 'late-events-report', settings });
  const { topic, groupId, bounded } = projectionOptions(config);
  const options = {
    brokers: config.settings.brokers.split(','),
    lateTopic: `${topic}.late`,
    windowsTable: 'revenue_windows',
    lateCountsTable: 'revenue_late_counts',
  };
  const db = new pg.Client({ connectionString: config.settings.databaseUrl });
  await db.connect();
  for (const ddl of reportTablesDdl(options)) await db.query(ddl);
  await db.end();
  const env = StreamEnvironment.create(environmentOptions(config));
  lateEventsReportJob(
    env,
    debeziumSource<Order>({ topics: [topic], groupId, ...(bounded ? { bounded: 'latest' as const } : {}) }),
    options,
  );
  await env.execute();
}
