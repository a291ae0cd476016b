/**
 * npm run bench -- upsert [--events 1000000] [--keys 100000] [--runs 3] [--workers N]
 *                         [--pipelines upsert,passthrough] [--parallelism 1,2]
 *                         (--runs 0: only produce the topic)
 *
 * The reference projection job (WORKLOAD.md job 1) on the real Kafka, beside its ceiling:
 *   ceiling      a bare kafkajs consumer counting the topic's messages (what the client can fetch);
 *   upsert       debeziumSource(bounded) → keyBy(id) → upsert (RocksDB, checkpoint every 1 s) → discard;
 *   passthrough  debeziumSource(bounded) → discard, checkpoint every 1 s: decoding is most of its work,
 *                so it shows what decode workers can give where decoding is the bottleneck;
 * each job with decode workers 0 (on the job's thread) and N (default: cores − 1, at least 1), and at
 * every `--parallelism` (default 1; `1,2` adds the same jobs on 2 subtask worker threads, and a
 * speed-up table against parallelism 1).
 *
 * The workload (preset M by default) is produced once to a topic named after its parameters and
 * reused while it holds the right number of messages. Every measurement runs in a child process of
 * its own (peak RSS, heap and CPU time are its own); rounds interleave the scenarios so background
 * load hits them alike; figures are medians over the rounds. events/s counts Kafka messages
 * (changes and tombstones) from the first record seen to the last, for the ceiling and the jobs
 * alike; wall time adds start-up, group join and the final checkpoint. "cores" is the child's CPU
 * time (all threads) over that span.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread } from 'node:worker_threads';
import { StreamEnvironment, debeziumSource, type SinkDefinition } from '../../runtime/index.ts';
import { endpointsFromEnv } from '../stack/endpoints.ts';
import { selectServices } from '../stack/services/index.ts';
import { up } from '../stack/stack.ts';
import {
  finish,
  mark,
  newSpan,
  rate,
  reportResult,
  runChild as runMeasurement,
  type Measured,
  type Span,
} from './bench-child.ts';
import { fmt, machine, median } from './bench-format.ts';
import { ensureWorkloadTopic } from './bench-topic.ts';
import {
  checkpointMetrics,
  checkpointRows,
  checkpointSummary,
  checkpointTable,
  phaseSummary,
  type CheckpointMetrics,
  type CheckpointRow,
} from './checkpoint-report.ts';
import { consumeCeiling } from './consume-ceiling.ts';

type Pipeline = 'upsert' | 'passthrough';
type Scenario =
  | { readonly kind: 'ceiling' }
  | { readonly kind: 'job'; readonly pipeline: Pipeline; readonly workers: number; readonly parallelism: number };
interface ChildSpec {
  readonly scenario: Scenario;
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly messages: number;
  readonly run: number;
  /** Decided by the parent: the subtask workers of a parallel job rerun this file and must agree. */
  readonly dir: string;
  readonly groupId: string;
}
interface Result extends Measured {
  /** Longest time between two batches reaching the sink (parallelism 1): how long the task loop stood still. */
  readonly maxGapMs?: number;
  readonly checkpoints?: readonly CheckpointRow[];
  readonly registry?: CheckpointMetrics;
}

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    keys: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '3' },
    workers: { type: 'string', default: String(Math.max(1, availableParallelism() - 1)) },
    pipelines: { type: 'string', default: 'upsert,passthrough' },
    parallelism: { type: 'string', default: '1' },
    child: { type: 'string' },
  },
});

const label = (s: Scenario): string =>
  s.kind === 'ceiling'
    ? 'kafkajs consume (ceiling)'
    : `${s.pipeline} job, decode workers ${s.workers}${s.parallelism > 1 ? `, parallelism ${s.parallelism}` : ''}`;

// ---------------------------------------------------------------- child: one measurement

interface SinkClock extends Span {
  records: number;
  maxGapMs: number;
  readonly atBarrier: Map<number, number>;
}

/** Discards what it gets; notes when records pass and how many had passed at each barrier. */
function discardSink(clock: SinkClock, spanFile: string | undefined): SinkDefinition<unknown> {
  return {
    name: 'discard',
    createOperator: () => ({
      processBatch(batch) {
        const previous = clock.last;
        clock.records += batch.length;
        mark(clock);
        if (previous !== 0) clock.maxGapMs = Math.max(clock.maxGapMs, clock.last - previous);
      },
      snapshotState(checkpointId) {
        clock.atBarrier.set(checkpointId, clock.records);
        return undefined;
      },
      // In a subtask worker: hand the span to the main thread of the child (epoch ms; CPU is process-wide).
      close() {
        if (spanFile === undefined || clock.first === 0) return;
        const at = (t: number) => performance.timeOrigin + t;
        appendFileSync(
          spanFile,
          `${JSON.stringify({ first: at(clock.first), last: at(clock.last), cpuAtFirst: clock.cpuAtFirst, cpuAtLast: clock.cpuAtLast, records: clock.records, atBarrier: [...clock.atBarrier] })}\n`,
        );
      },
    }),
  };
}

/** The subtasks' spans, combined: first record anywhere to last record anywhere (times relative to this thread). */
function subtaskSpans(spanFile: string, clock: SinkClock): void {
  const spans = existsSync(spanFile)
    ? readFileSync(spanFile, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Span & { records: number; atBarrier: [number, number][] })
    : [];
  if (spans.length === 0) return;
  const first = spans.reduce((a, b) => (a.first <= b.first ? a : b));
  const last = spans.reduce((a, b) => (a.last >= b.last ? a : b));
  Object.assign(clock, {
    first: first.first - performance.timeOrigin,
    cpuAtFirst: first.cpuAtFirst,
    last: last.last - performance.timeOrigin,
    cpuAtLast: last.cpuAtLast,
  });
  clock.records = spans.reduce((n, s) => n + s.records, 0);
  for (const s of spans) for (const [id, n] of s.atBarrier) clock.atBarrier.set(id, (clock.atBarrier.get(id) ?? 0) + n);
}

async function job(
  spec: ChildSpec,
  pipeline: Pipeline,
  workers: number,
  parallelism: number,
): Promise<Result | undefined> {
  const { dir } = spec;
  const jobName = `${pipeline}-bench-w${workers}-p${parallelism}-r${spec.run}`;
  const spanFile = parallelism > 1 ? join(dir, 'spans.jsonl') : undefined;
  try {
    const wallStart = Date.now();
    const env = StreamEnvironment.create({
      jobName,
      parallelism,
      checkpoints: { intervalMs: 1000, dir: join(dir, 'checkpoints'), retain: 100_000 },
      state: { backend: 'rocksdb', dir: join(dir, 'state') },
      restore: 'none',
      restart: { maxAttempts: 0 },
      log: (line) => (line.includes('aborted') ? console.error(`[${jobName}] ${line}`) : undefined),
    });
    const clock: SinkClock = { ...newSpan(), records: 0, maxGapMs: 0, atBarrier: new Map() };
    const source = env.fromSource(
      debeziumSource({
        topics: [spec.topic],
        groupId: spec.groupId,
        brokers: spec.brokers,
        bounded: 'latest',
        decodeWorkers: workers,
      }),
    );
    const sink = discardSink(clock, isMainThread ? undefined : spanFile);
    if (pipeline === 'upsert')
      source
        .keyBy((e) => e.key?.['id'] as number)
        .upsert()
        .sinkTo(sink);
    else source.sinkTo(sink);
    await env.execute();
    if (!isMainThread) return undefined; // a subtask worker: the child's main thread reports
    if (spanFile !== undefined) subtaskSpans(spanFile, clock);
    return {
      ...finish(spec.messages, clock, wallStart),
      ...(spanFile === undefined ? { maxGapMs: clock.maxGapMs } : {}),
      checkpoints: await checkpointRows(join(dir, 'checkpoints', jobName), clock.atBarrier),
      registry: await checkpointMetrics(await env.metrics.aggregated()),
    };
  } finally {
    if (isMainThread) await rm(dir, { recursive: true, force: true });
  }
}

async function child(spec: ChildSpec): Promise<void> {
  const s = spec.scenario;
  const result =
    s.kind === 'ceiling'
      ? await consumeCeiling(spec.brokers, spec.topic, spec.messages)
      : await job(spec, s.pipeline, s.workers, s.parallelism);
  if (result !== undefined) reportResult(result);
}

// ---------------------------------------------------------------- parent: rounds and the report

function runChild(spec: ChildSpec): Promise<Result> {
  return runMeasurement<Result>(fileURLToPath(import.meta.url), spec, `${label(spec.scenario)} run ${spec.run}`);
}

function summaryTable(scenarios: readonly Scenario[], results: readonly Result[][]): void {
  const ceilingRate = median(results[0]?.map(rate) ?? []);
  console.log(
    '\nscenario                                           events/s  per run                       ratio  cores  wall s  peak RSS  checkpoints: median n, duration median / max, bytes median',
  );
  scenarios.forEach((s, i) => {
    const rs = results[i] ?? [];
    const checkpoints = checkpointSummary(
      rs.flatMap((r) => r.checkpoints ?? []),
      rs.map((r) => r.checkpoints ?? []),
    );
    const cores = median(rs.map((r) => r.cpuSeconds / r.seconds));
    console.log(
      `${label(s).padEnd(48)}${fmt(median(rs.map(rate))).padStart(11)}  ${rs
        .map((r) => fmt(rate(r)))
        .join(', ')
        .padEnd(
          29,
        )} ${(median(rs.map(rate)) / ceilingRate).toFixed(3).padStart(5)}  ${cores.toFixed(2).padStart(5)}  ${fmt(median(rs.map((r) => r.wallSeconds)), 1).padStart(6)}  ${`${fmt(median(rs.map((r) => r.maxRssMb)))} MB`.padStart(8)}  ${checkpoints}`,
    );
  });
  scenarios.forEach((s, i) => {
    if (s.kind === 'ceiling') return;
    const per = (results[i] ?? [])
      .map((r) => r.registry)
      .map((x) => `${fmt(((x?.sumSeconds ?? 0) / Math.max(1, x?.count ?? 0)) * 1000)} ms × ${x?.count ?? 0}`);
    console.log(`  ${label(s)} — metrics registry per run: cdcflow_checkpoint_duration_seconds mean ${per.join('; ')}`);
    for (const r of results[i] ?? []) {
      const gap =
        r.maxGapMs === undefined ? '' : `; longest pause between two batches at the sink ${fmt(r.maxGapMs)} ms`;
      console.log(
        `    keyed snapshots: sync part (loop waits) ${phaseSummary(r.registry?.snapshotSync)}; async part (loop runs) ${phaseSummary(r.registry?.snapshotAsync)}${gap}`,
      );
    }
  });
}

/** Each parallel job against the same job at parallelism 1, from the same rounds. */
function speedUpTable(scenarios: readonly Scenario[], results: readonly Result[][]): void {
  console.log('\nparallelism speed-up (same pipeline and decode workers; medians over the rounds)');
  console.log('scenario                                            events/s  speed-up  cores  peak RSS');
  scenarios.forEach((s, i) => {
    if (s.kind === 'ceiling') return;
    const base = scenarios.findIndex(
      (b) => b.kind === 'job' && b.pipeline === s.pipeline && b.workers === s.workers && b.parallelism === 1,
    );
    const rs = results[i] ?? [];
    const speedUp = base < 0 ? '-' : `${(median(rs.map(rate)) / median((results[base] ?? []).map(rate))).toFixed(2)}x`;
    const cores = median(rs.map((r) => r.cpuSeconds / r.seconds));
    console.log(
      `${label(s).padEnd(50)}${fmt(median(rs.map(rate))).padStart(10)}  ${speedUp.padStart(8)}  ${cores.toFixed(2).padStart(5)}  ${`${fmt(median(rs.map((r) => r.maxRssMb)))} MB`.padStart(8)}`,
    );
  });
}

async function main(): Promise<void> {
  const events = Number(values.events);
  const keys = Number(values.keys);
  const runs = Number(values.runs);
  const workers = Number(values.workers);
  const pipelines = values.pipelines.split(',').filter((p): p is Pipeline => p === 'upsert' || p === 'passthrough');
  const parallelisms = values.parallelism.split(',').map(Number);
  console.log(`machine: ${machine()}`);
  if (process.env['KAFKA_BROKERS'] === undefined)
    await up(selectServices(['kafka']), (line) => console.log(`stack: ${line}`));
  const brokers = endpointsFromEnv().kafkaBrokers.split(',');
  const { topic, messages } = await ensureWorkloadTopic(brokers, events, keys);
  if (runs === 0) return;
  const scenarios: Scenario[] = [{ kind: 'ceiling' }];
  for (const pipeline of pipelines)
    for (const w of workers > 0 ? [0, workers] : [0])
      for (const parallelism of parallelisms) scenarios.push({ kind: 'job', pipeline, workers: w, parallelism });
  const results: Result[][] = scenarios.map(() => []);
  for (let run = 1; run <= runs; run++) {
    for (const [i, scenario] of scenarios.entries()) {
      const stamp = `${process.pid}-${Date.now()}-${i}`;
      const result = await runChild({
        scenario,
        brokers,
        topic,
        messages,
        run,
        dir: join(tmpdir(), `cdcflow-upsert-bench-${stamp}`),
        groupId: `bench-${stamp}`,
      });
      results[i]?.push(result);
      const gap = result.maxGapMs === undefined ? '' : `  longest sink pause ${fmt(result.maxGapMs)} ms`;
      console.log(
        `run ${run}/${runs}  ${label(scenario).padEnd(36)} ${fmt(rate(result)).padStart(9)} events/s  ${fmt(result.wallSeconds, 1)} s wall  ${fmt(result.maxRssMb)} MB peak RSS${gap}  load ${loadavg()[0]?.toFixed(2)}`,
      );
    }
  }
  const preset = events === 1_000_000 && keys === 100_000 ? 'preset M' : 'custom size';
  console.log(
    `\n${fmt(messages)} messages (${preset}: ${fmt(events)} events over ${fmt(keys)} keys), ${runs} round(s); machine at the end: ${machine()}`,
  );
  summaryTable(scenarios, results);
  if (parallelisms.some((p) => p > 1)) speedUpTable(scenarios, results);
  const upsertIndex = scenarios.findIndex((s) => s.kind === 'job' && s.pipeline === 'upsert');
  const rows = results[upsertIndex]?.[0]?.checkpoints;
  if (rows !== undefined) checkpointTable(`${label(scenarios[upsertIndex] as Scenario)}, round 1`, rows);
}

if (values.child !== undefined) await child(JSON.parse(values.child) as ChildSpec);
else await main();
