/**
 * The reference revenue windows (WORKLOAD.md, job 2): Debezium orders, c/u/r only → keyBy
 * after.status → tumbling 1-minute event-time windows on source.ts_ms (bounded out-of-orderness
 * 5 s, allowed lateness 30 s) → exact decimal sum of after.amount and count; events later than
 * that go to a late side output. Run it (prints window results and late events as JSON lines):
 *   cdcflow run jobs/revenue-windows.ts --set bounded=true     (or: npx tsx jobs/revenue-windows.ts ...)
 * Settings: as jobs/orders-projection.ts (topic, groupId, bounded); brokers from KAFKA_BROKERS.
 */
import { pathToFileURL } from 'node:url';
import {
  OutputTag,
  StreamEnvironment,
  TumblingEventTimeWindows,
  WatermarkStrategy,
  debeziumSource,
  decimalSum,
  environmentOptions,
  loadJobConfig,
  printSink,
} from '../runtime/index.ts';
import type {
  ChangeEvent,
  DataStream,
  Firing,
  SinkDefinition,
  SourceDefinition,
  TimeWindow,
} from '../runtime/index.ts';
import { projectionOptions, projectionSettings } from './orders-projection.ts';

export interface Order {
  readonly status: string;
  readonly amount: string;
  readonly [column: string]: unknown;
}
export type OrderEvent = ChangeEvent<Order>;

/** One window result; a later row for the same window and status (higher updateCount) replaces it. */
export interface RevenueRow {
  readonly windowStart: number;
  readonly windowEnd: number;
  readonly status: string;
  readonly sum: string;
  readonly count: number;
  readonly firing: Firing;
  readonly updateCount: number;
}

export const LATE_ORDERS = new OutputTag<OrderEvent>('revenue-late');
/** The window grid: 1-minute tumbling windows on `source.ts_ms`. */
export const REVENUE_WINDOWS = TumblingEventTimeWindows.of(60_000);
/** The window an event belongs to by its commit time (late or not). */
export const revenueWindowOf = (e: OrderEvent): TimeWindow =>
  REVENUE_WINDOWS.assignWindows(e.source.tsMs)[0] as TimeWindow;
export const OUT_OF_ORDERNESS_MS = 5_000;
export const ALLOWED_LATENESS_MS = 30_000;

/** The revenue windows as streams: window results, and the events too late for them. */
export function revenueWindows(
  env: StreamEnvironment,
  source: SourceDefinition<OrderEvent>,
): { rows: DataStream<RevenueRow>; late: DataStream<OrderEvent> } {
  const revenue = env
    .fromSource(source, {
      uid: 'orders-source',
      watermarks: WatermarkStrategy.boundedOutOfOrderness<OrderEvent>(OUT_OF_ORDERNESS_MS).withTimestamps(
        (e) => e.source.tsMs,
      ),
    })
    .filter((e) => (e.op === 'c' || e.op === 'u' || e.op === 'r') && e.after !== null)
    .keyBy((e) => (e.after as Order).status)
    .window(REVENUE_WINDOWS)
    .allowedLateness(ALLOWED_LATENESS_MS)
    .sideOutputLateData(LATE_ORDERS)
    .aggregate(decimalSum((e) => (e.after as Order).amount))
    .uid('revenue-windows');
  const rows = revenue
    .map((r): RevenueRow => ({
      windowStart: r.window.start,
      windowEnd: r.window.end,
      status: r.key,
      ...r.result,
      firing: r.firing,
      updateCount: r.updateCount,
    }))
    .uid('revenue-rows');
  return { rows, late: revenue.getSideOutput(LATE_ORDERS) };
}

export function revenueWindowsJob(
  env: StreamEnvironment,
  source: SourceDefinition<OrderEvent>,
  sinks: { windows: SinkDefinition<RevenueRow>; late: SinkDefinition<OrderEvent> },
): void {
  const { rows, late } = revenueWindows(env, source);
  rows.sinkTo(sinks.windows);
  late.sinkTo(sinks.late);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const config = loadJobConfig({ name: 'revenue-windows', settings: projectionSettings });
  const { topic, groupId, bounded } = projectionOptions(config);
  const env = StreamEnvironment.create(environmentOptions(config));
  const source = debeziumSource<Order>({
    topics: [topic],
    groupId,
    ...(bounded ? { bounded: 'latest' as const } : {}),
  });
  revenueWindowsJob(env, source, {
    windows: printSink(),
    late: printSink({
      format: (e) => JSON.stringify({ late: { id: e.key, op: e.op, tsMs: e.source.tsMs, lsn: e.source.lsn } }),
    }),
  });
  await env.execute();
}
