/**
 * npm run bench -- windows [--events 1000000] [--keys 100000] [--runs 3]   (--runs 0: only produce the topic)
 *
 * The reference revenue windows (WORKLOAD.md job 2, jobs/revenue-windows.ts) on the real Kafka:
 * debeziumSource(bounded) → c/u/r → keyBy(status) → tumbling 1-minute event-time windows, 5 s
 * out-of-orderness, 30 s allowed lateness, late side output; RocksDB state, checkpoint every 1 s.
 * Beside it the raw consume ceiling on the same topic (a bare kafkajs consumer).
 *
 * The workload topic is upsert-bench's (same name, produced once). Every measurement runs in a
 * child process of its own; figures are medians over the rounds. events/s counts Kafka messages
 * from the first batch the source hands out to the last. Each run's output — final result per
 * window and status, the late events, the late count per window and `cdcflow_late_events_total` —
 * is checked against revenueWindowOracle over the same generated input, replayed batch by batch
 * in the order the run read it (the engine's rule; see oracleOf); a mismatch fails the bench.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  revenueWindowOf,
  revenueWindows,
  type Order,
  type OrderEvent,
  type RevenueRow,
} from '../../jobs/revenue-windows.ts';
import {
  StreamEnvironment,
  collectSink,
  debeziumSource,
  type SourceDefinition,
  type TimeWindow,
} from '../../runtime/index.ts';
import { endpointsFromEnv } from '../stack/endpoints.ts';
import { selectServices } from '../stack/services/index.ts';
import { up } from '../stack/stack.ts';
import { generateWorkload } from '../workload/generator.ts';
import {
  RevenueWindowOracle,
  type LateWindowCount,
  type OracleRecord,
  type RevenueOracleResult,
  type RevenueWindow,
} from '../workload/revenue-oracle.ts';
import { finish, mark, newSpan, rate, reportResult, runChild, type Measured, type Span } from './bench-child.ts';
import { fmt, machine, median } from './bench-format.ts';
import { benchWorkload, ensureWorkloadTopic } from './bench-topic.ts';
import {
  checkpointMetrics,
  checkpointRows,
  checkpointSummary,
  checkpointTable,
  type CheckpointMetrics,
  type CheckpointRow,
} from './checkpoint-report.ts';
import { consumeCeiling } from './consume-ceiling.ts';

type Scenario = 'ceiling' | 'windows';
interface ChildSpec {
  readonly scenario: Scenario;
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly messages: number;
  readonly run: number;
}
/** What the job wrote, in the oracle's terms. */
interface Output {
  readonly windows: RevenueWindow[];
  readonly lateLsns: number[];
  readonly lateCounts: LateWindowCount[];
  readonly lateMetric: number;
  readonly lateUpdates: number;
  /** The order the job read the topic in, for the oracle to replay. */
  readonly consumed: [partition: number, first: number, last: number][];
}
/** A late event, as much as the check needs (whole events would weigh on the peak RSS). */
interface LateEvent {
  readonly lsn: number;
  readonly window: TimeWindow;
  readonly status: string;
}
interface Result extends Measured {
  readonly checkpoints?: readonly CheckpointRow[];
  readonly registry?: CheckpointMetrics;
  readonly output?: Output;
}

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    keys: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '3' },
    child: { type: 'string' },
  },
});

const LABELS: Record<Scenario, string> = { ceiling: 'kafkajs consume (ceiling)', windows: 'revenue windows job' };
const byWindow = (a: { windowStart: number; status: string }, b: { windowStart: number; status: string }) =>
  a.windowStart - b.windowStart || (a.status < b.status ? -1 : a.status > b.status ? 1 : 0);

// ---------------------------------------------------------------- child: one measurement

interface SourceClock extends Span {
  records: number;
  readonly atBarrier: Map<number, number>;
  /** Every batch as [partition, first offset, last offset], in the order the job read them. */
  readonly consumed: [number, number, number][];
}

/** The source as it is, noting when batches pass, their order and how many records had passed at each barrier. */
function measured(inner: SourceDefinition<OrderEvent>, clock: SourceClock): SourceDefinition<OrderEvent> {
  return {
    name: inner.name,
    createReader: (context) => {
      const reader = inner.createReader(context);
      return {
        open: (restored) => reader.open(restored),
        poll: async (maxWaitMs) => {
          const result = await reader.poll(maxWaitMs);
          if (typeof result === 'object' && result.records.length > 0) {
            clock.records += result.records.length;
            const origin = (i: number) => (result.records[i] as { value: OrderEvent }).value.origin;
            clock.consumed.push([
              origin(0).partition,
              Number(origin(0).offset),
              Number(origin(result.records.length - 1).offset),
            ]);
            mark(clock);
          }
          return result;
        },
        snapshot: (checkpointId) => {
          clock.atBarrier.set(checkpointId, clock.records);
          return reader.snapshot(checkpointId);
        },
        // The source's assignment must reach the watermark generator, as without the wrapper.
        assignedSplits: () => reader.assignedSplits?.(),
        notifyCheckpointComplete: (checkpointId) =>
          reader.notifyCheckpointComplete?.(checkpointId) ?? Promise.resolve(),
        close: () => reader.close(),
      };
    },
  };
}

async function windowsJob(spec: ChildSpec): Promise<Result> {
  const dir = await mkdtemp(join(tmpdir(), 'cdcflow-windows-bench-'));
  const jobName = `windows-bench-r${spec.run}`;
  try {
    const wallStart = Date.now();
    const env = StreamEnvironment.create({
      jobName,
      checkpoints: { intervalMs: 1000, dir: join(dir, 'checkpoints'), retain: 100_000 },
      state: { backend: 'rocksdb', dir: join(dir, 'state') },
      restore: 'none',
      restart: { maxAttempts: 0 },
      log: (line) => (line.includes('aborted') ? console.error(`[${jobName}] ${line}`) : undefined),
    });
    const clock: SourceClock = { ...newSpan(), records: 0, atBarrier: new Map(), consumed: [] };
    const source = debeziumSource<Order>({
      topics: [spec.topic],
      groupId: `${jobName}-${process.pid}-${Date.now()}`,
      brokers: spec.brokers,
      bounded: 'latest',
    });
    const { rows, late } = revenueWindows(env, measured(source, clock));
    // No restarts (maxAttempts 0), so every emitted result is final: plain collection is exact.
    const results: RevenueRow[] = [];
    const lateEvents: LateEvent[] = [];
    rows.sinkTo(collectSink(results));
    late
      .map((e: OrderEvent): LateEvent => ({
        lsn: e.source.lsn,
        window: revenueWindowOf(e),
        status: (e.after as Order).status,
      }))
      .sinkTo(collectSink(lateEvents));
    const { metrics } = await env.execute();
    const lateMetric =
      (await metrics.registry.getSingleMetric('cdcflow_late_events_total')?.get())?.values.reduce(
        (s, v) => s + v.value,
        0,
      ) ?? 0;
    return {
      ...finish(spec.messages, clock, wallStart),
      checkpoints: await checkpointRows(join(dir, 'checkpoints', jobName), clock.atBarrier),
      registry: await checkpointMetrics(metrics.registry),
      output: outputOf(results, lateEvents, lateMetric, clock.consumed),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function outputOf(
  results: readonly RevenueRow[],
  late: readonly LateEvent[],
  lateMetric: number,
  consumed: Output['consumed'],
): Output {
  const final = new Map<string, RevenueRow>();
  for (const row of results) {
    const id = `${row.windowStart}|${row.status}`;
    if ((final.get(id)?.updateCount ?? -1) < row.updateCount) final.set(id, row);
  }
  const windows = [...final.values()]
    .map(({ windowStart, windowEnd, status, sum, count }) => ({ windowStart, windowEnd, status, sum, count }))
    .sort(byWindow);
  const counts = new Map<string, LateWindowCount>();
  for (const { window, status } of late) {
    const id = `${window.start}|${status}`;
    counts.set(id, {
      windowStart: window.start,
      windowEnd: window.end,
      status,
      lateCount: (counts.get(id)?.lateCount ?? 0) + 1,
    });
  }
  return {
    windows,
    lateLsns: late.map((l) => l.lsn).sort((a, b) => a - b),
    lateCounts: [...counts.values()].sort(byWindow),
    lateMetric,
    lateUpdates: results.filter((r) => r.firing === 'late-update').length,
    consumed,
  };
}

async function child(spec: ChildSpec): Promise<void> {
  reportResult(
    spec.scenario === 'ceiling'
      ? await consumeCeiling(spec.brokers, spec.topic, spec.messages)
      : await windowsJob(spec),
  );
}

// ---------------------------------------------------------------- parent: oracle, rounds and the report

/** The workload by partition and offset (the bench topic is produced in generation order from offset 0), slimmed to what the oracle reads. */
function workloadByPartition(events: number, keys: number): OracleRecord[][] {
  const partitions: OracleRecord[][] = [];
  for (const { seq, partition, id, event } of generateWorkload(benchWorkload(events, keys))) {
    const slim =
      event === null
        ? null
        : {
            op: event.op,
            after: event.after === null ? null : { status: event.after.status, amount: event.after.amount },
            source: { ts_ms: event.source.ts_ms, lsn: event.source.lsn },
          };
    (partitions[partition] ??= []).push({ seq, partition, id, event: slim as OracleRecord['event'] });
  }
  return partitions;
}

/**
 * The oracle over the batches in the order this run read them. Generation order is not enough at
 * this size: fetching is fair by bytes, so partitions drift apart in event time (revenue-oracle.ts).
 */
function oracleOf(partitions: readonly OracleRecord[][], consumed: Output['consumed']): RevenueOracleResult {
  const oracle = new RevenueWindowOracle({ partitions: partitions.length });
  const next = partitions.map(() => 0);
  for (const [partition, first, last] of consumed) {
    const records = partitions[partition] ?? [];
    // Tombstones between two batches reach no batch; the oracle skips them anyway.
    oracle.pushBatch(records.slice(first, last + 1));
    next[partition] = last + 1;
  }
  const unread = partitions.reduce(
    (n, records, p) => n + records.slice(next[p]).filter((r) => r.event !== null).length,
    0,
  );
  if (unread > 0) throw new Error(`the job did not read ${unread} change events of the topic`);
  return oracle.result();
}

/** Where the output differs from the oracle; empty when it matched. */
function mismatches(output: Output, expected: RevenueOracleResult): string[] {
  const found: string[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (!same(output.windows, expected.windows))
    found.push(
      `window results: ${output.windows.length} rows, oracle ${expected.windows.length}; first difference at ${output.windows.findIndex((w, i) => !same(w, expected.windows[i]))}`,
    );
  if (
    !same(
      output.lateLsns,
      expected.late.map((l) => l.lsn).sort((a, b) => a - b),
    )
  )
    found.push(`late events: ${output.lateLsns.length}, oracle ${expected.late.length}`);
  if (!same(output.lateCounts, expected.lateCounts))
    found.push(`late counts: ${output.lateCounts.length} windows, oracle ${expected.lateCounts.length}`);
  if (output.lateMetric !== expected.late.length)
    found.push(`cdcflow_late_events_total ${output.lateMetric}, oracle ${expected.late.length}`);
  return found;
}

function summaryTable(scenarios: readonly Scenario[], results: readonly Result[][]): void {
  const ceilingRate = median(results[0]?.map(rate) ?? []);
  console.log(
    '\nscenario                    events/s  per run                 ratio  cores  wall s  peak RSS  late events  checkpoints: median n, duration median / max, bytes median',
  );
  scenarios.forEach((s, i) => {
    const rs = results[i] ?? [];
    const checkpoints = checkpointSummary(
      rs.flatMap((r) => r.checkpoints ?? []),
      rs.map((r) => r.checkpoints ?? []),
    );
    const late = rs[0]?.output === undefined ? '' : fmt(rs[0].output.lateLsns.length);
    console.log(
      `${LABELS[s].padEnd(25)}${fmt(median(rs.map(rate))).padStart(11)}  ${rs
        .map((r) => fmt(rate(r)))
        .join(', ')
        .padEnd(23)} ${(median(rs.map(rate)) / ceilingRate).toFixed(3).padStart(5)}  ${median(
        rs.map((r) => r.cpuSeconds / r.seconds),
      )
        .toFixed(2)
        .padStart(
          5,
        )}  ${fmt(median(rs.map((r) => r.wallSeconds)), 1).padStart(6)}  ${`${fmt(median(rs.map((r) => r.maxRssMb)))} MB`.padStart(8)}  ${late.padStart(11)}  ${checkpoints}`,
    );
  });
}

async function main(): Promise<void> {
  const [events, keys, runs] = [Number(values.events), Number(values.keys), Number(values.runs)];
  console.log(`machine: ${machine()}`);
  if (process.env['KAFKA_BROKERS'] === undefined)
    await up(selectServices(['kafka']), (line) => console.log(`stack: ${line}`));
  const brokers = endpointsFromEnv().kafkaBrokers.split(',');
  const { topic, messages } = await ensureWorkloadTopic(brokers, events, keys);
  if (runs === 0) return;
  const workload = workloadByPartition(events, keys);
  const scenarios: Scenario[] = ['ceiling', 'windows'];
  const results: Result[][] = scenarios.map(() => []);
  const failed: string[] = [];
  let expected: RevenueOracleResult | undefined;
  for (let run = 1; run <= runs; run++) {
    for (const [i, scenario] of scenarios.entries()) {
      const result = await runChild<Result>(
        fileURLToPath(import.meta.url),
        { scenario, brokers, topic, messages, run } satisfies ChildSpec,
        `${LABELS[scenario]} run ${run}`,
      );
      results[i]?.push(result);
      const found =
        result.output === undefined
          ? []
          : mismatches(result.output, (expected = oracleOf(workload, result.output.consumed)));
      failed.push(...found.map((f) => `run ${run}: ${f}`));
      const verdict =
        result.output === undefined
          ? ''
          : found.length === 0
            ? `  output matched the revenue oracle (${fmt(result.output.windows.length)} windows, ${fmt(result.output.lateUpdates)} late updates)`
            : '  OUTPUT DIFFERS FROM THE ORACLE';
      console.log(
        `run ${run}/${runs}  ${LABELS[scenario].padEnd(25)} ${fmt(rate(result)).padStart(9)} events/s  ${fmt(result.wallSeconds, 1)} s wall  ${fmt(result.maxRssMb)} MB peak RSS  load ${loadavg()[0]?.toFixed(2)}${verdict}`,
      );
    }
  }
  const preset = events === 1_000_000 && keys === 100_000 ? 'preset M' : 'custom size';
  console.log(
    `\n${fmt(messages)} messages (${preset}: ${fmt(events)} events over ${fmt(keys)} keys), ${runs} round(s); machine at the end: ${machine()}`,
  );
  summaryTable(scenarios, results);
  const rows = results[1]?.[0]?.checkpoints;
  if (rows !== undefined) checkpointTable(`${LABELS.windows}, round 1 (changes = records read)`, rows);
  if (failed.length > 0) {
    console.error(`\nthe output did not match the revenue oracle:\n  ${failed.join('\n  ')}`);
    process.exitCode = 1;
  } else if (expected !== undefined) {
    console.log(
      `\noutput matched the revenue oracle (replaying each run's consumption order) in all ${runs} run(s): ${fmt(expected.windows.length)} window results, ${fmt(expected.late.length)} late events, ${fmt(expected.lateCounts.length)} late-count windows`,
    );
  }
}

if (values.child !== undefined) await child(JSON.parse(values.child) as ChildSpec);
else await main();
