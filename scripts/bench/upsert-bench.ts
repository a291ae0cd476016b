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
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread } from 'node:worker_threads';
import { Kafka, logLevel } from 'kafkajs';
import { METADATA_FILE, parseMetadata, type CheckpointMetadata } from '../../checkpoints/index.ts';
import { StreamEnvironment, debeziumSource, type SinkDefinition } from '../../runtime/index.ts';
import { endpointsFromEnv } from '../stack/endpoints.ts';
import { selectServices } from '../stack/services/index.ts';
import { up } from '../stack/stack.ts';
import { produceWorkload } from '../workload/producer.ts';

type Pipeline = 'upsert' | 'passthrough';
type Scenario = { readonly kind: 'ceiling' } | { readonly kind: 'job'; readonly pipeline: Pipeline; readonly workers: number; readonly parallelism: number };
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
interface CheckpointRow {
  readonly id: number;
  /** What this checkpoint wrote: a delta of the changes, a full snapshot (the chain restarts), or no state. */
  readonly kind: 'delta' | 'full' | 'none';
  readonly durationMs: number;
  readonly bytes: number;
  /** Bytes of all state files this checkpoint references (the state a restore reads). */
  readonly stateBytes: number;
  /** Records that reached the sink between the previous barrier and this one. */
  readonly changes: number;
}
interface Result {
  readonly messages: number;
  readonly seconds: number;
  readonly wallSeconds: number;
  readonly cpuSeconds: number;
  readonly maxRssMb: number;
  readonly checkpoints?: readonly CheckpointRow[];
  /** From env.metrics: cdcflow_checkpoint_duration_seconds (count, sum) and the last cdcflow_checkpoint_size_bytes. */
  readonly registry?: { readonly count: number; readonly sumSeconds: number; readonly lastSizeBytes: number };
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

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const mb = (bytes: number): string => `${fmt(bytes / 1e6, 1)} MB`;
const label = (s: Scenario): string => (s.kind === 'ceiling' ? 'kafkajs consume (ceiling)' : `${s.pipeline} job, decode workers ${s.workers}${s.parallelism > 1 ? `, parallelism ${s.parallelism}` : ''}`);
const rate = (r: Result): number => r.messages / r.seconds;

// ---------------------------------------------------------------- the workload topic, produced once

async function ensureWorkloadTopic(brokers: readonly string[], events: number, keys: number): Promise<{ topic: string; messages: number }> {
  const topic = `bench.orders.seed1.e${events}.k${keys}.p6`;
  const marker = join('.cdcflow', 'bench', `${topic}.json`);
  const expected = existsSync(marker) ? (JSON.parse(readFileSync(marker, 'utf8')) as { messages: number }).messages : undefined;
  const admin = new Kafka({ clientId: 'cdcflow-bench', brokers: [...brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const exists = (await admin.listTopics()).includes(topic);
    const count = exists ? (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(BigInt(p.high) - BigInt(p.low)), 0) : 0;
    if (exists && count === expected) {
      console.log(`workload: reusing ${topic} (${fmt(count)} messages)`);
      return { topic, messages: count };
    }
    if (exists) {
      await admin.deleteTopics({ topics: [topic] });
      for (let i = 0; i < 100 && (await admin.listTopics()).includes(topic); i++) await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await admin.disconnect();
  }
  console.log(`workload: producing ${fmt(events)} events over ${fmt(keys)} keys to ${topic} (once; later runs reuse it)`);
  const started = Date.now();
  const produced = await produceWorkload({ brokers, topic, workload: { seed: 1, events, keys, partitions: 6 } });
  console.log(`workload: ${fmt(produced.records)} messages, ${mb(produced.bytes)} (${fmt(produced.bytes / produced.records)} B/message) in ${fmt((Date.now() - started) / 1000, 1)} s`);
  mkdirSync(join('.cdcflow', 'bench'), { recursive: true });
  writeFileSync(marker, JSON.stringify({ messages: produced.records, bytes: produced.bytes }));
  return { topic, messages: produced.records };
}

// ---------------------------------------------------------------- child: one measurement

const cpuSeconds = (): number => {
  const cpu = process.cpuUsage();
  return (cpu.user + cpu.system) / 1e6;
};

/** Timing of the records' passage: wall clock and process CPU at the first and the last record. */
interface Span {
  first: number;
  last: number;
  cpuAtFirst: number;
  cpuAtLast: number;
}

function mark(span: Span): void {
  if (span.first === 0) {
    span.first = performance.now();
    span.cpuAtFirst = cpuSeconds();
  }
  span.last = performance.now();
  span.cpuAtLast = cpuSeconds();
}

function finish(messages: number, span: Span, wallStart: number): Result {
  return {
    messages,
    seconds: (span.last - span.first) / 1000,
    wallSeconds: (Date.now() - wallStart) / 1000,
    cpuSeconds: span.cpuAtLast - span.cpuAtFirst,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
  };
}

async function ceiling(spec: ChildSpec): Promise<Result> {
  const wallStart = Date.now();
  const kafka = new Kafka({ clientId: 'cdcflow-bench-ceiling', brokers: [...spec.brokers], logLevel: logLevel.WARN });
  // The same consumer settings as KafkajsFetcher, so the ceiling is the client's, not a tuning's.
  const consumer = kafka.consumer({ groupId: `bench-ceiling-${process.pid}-${Date.now()}`, maxBytesPerPartition: 1024 * 1024, sessionTimeout: 30_000, heartbeatInterval: 3000 });
  await consumer.connect();
  await consumer.subscribe({ topic: spec.topic, fromBeginning: true });
  let count = 0;
  const span: Span = { first: 0, last: 0, cpuAtFirst: 0, cpuAtLast: 0 };
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        autoCommit: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: async ({ batch, resolveOffset }) => {
          count += batch.messages.length;
          resolveOffset(batch.lastOffset());
          mark(span);
          if (count >= spec.messages) resolve();
        },
      })
      .catch(reject);
  });
  const result = finish(count, span, wallStart);
  await consumer.disconnect();
  return result;
}

interface SinkClock extends Span {
  records: number;
  readonly atBarrier: Map<number, number>;
}

/** Discards what it gets; notes when records pass and how many had passed at each barrier. */
function discardSink(clock: SinkClock, spanFile: string | undefined): SinkDefinition<unknown> {
  return {
    name: 'discard',
    createOperator: () => ({
      processBatch(batch) {
        clock.records += batch.length;
        mark(clock);
      },
      snapshotState(checkpointId) {
        clock.atBarrier.set(checkpointId, clock.records);
        return undefined;
      },
      // In a subtask worker: hand the span to the main thread of the child (epoch ms; CPU is process-wide).
      close() {
        if (spanFile === undefined || clock.first === 0) return;
        const at = (t: number) => performance.timeOrigin + t;
        appendFileSync(spanFile, `${JSON.stringify({ first: at(clock.first), last: at(clock.last), cpuAtFirst: clock.cpuAtFirst, cpuAtLast: clock.cpuAtLast, records: clock.records, atBarrier: [...clock.atBarrier] })}\n`);
      },
    }),
  };
}

/** The subtasks' spans, combined: first record anywhere to last record anywhere (times relative to this thread). */
function subtaskSpans(spanFile: string, clock: SinkClock): void {
  const spans = existsSync(spanFile) ? readFileSync(spanFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Span & { records: number; atBarrier: [number, number][] }) : [];
  if (spans.length === 0) return;
  const first = spans.reduce((a, b) => (a.first <= b.first ? a : b));
  const last = spans.reduce((a, b) => (a.last >= b.last ? a : b));
  Object.assign(clock, { first: first.first - performance.timeOrigin, cpuAtFirst: first.cpuAtFirst, last: last.last - performance.timeOrigin, cpuAtLast: last.cpuAtLast });
  clock.records = spans.reduce((n, s) => n + s.records, 0);
  for (const s of spans) for (const [id, n] of s.atBarrier) clock.atBarrier.set(id, (clock.atBarrier.get(id) ?? 0) + n);
}

async function job(spec: ChildSpec, pipeline: Pipeline, workers: number, parallelism: number): Promise<Result | undefined> {
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
    const clock: SinkClock = { first: 0, last: 0, cpuAtFirst: 0, cpuAtLast: 0, records: 0, atBarrier: new Map() };
    const source = env.fromSource(debeziumSource({ topics: [spec.topic], groupId: spec.groupId, brokers: spec.brokers, bounded: 'latest', decodeWorkers: workers }));
    const sink = discardSink(clock, isMainThread ? undefined : spanFile);
    if (pipeline === 'upsert') source.keyBy((e) => e.key?.['id'] as number).upsert().sinkTo(sink);
    else source.sinkTo(sink);
    await env.execute();
    if (!isMainThread) return undefined; // a subtask worker: the child's main thread reports
    if (spanFile !== undefined) subtaskSpans(spanFile, clock);
    const registry = await env.metrics.aggregated();
    const durations = (await registry.getSingleMetric('cdcflow_checkpoint_duration_seconds')?.get())?.values ?? [];
    const sizes = (await registry.getSingleMetric('cdcflow_checkpoint_size_bytes')?.get())?.values ?? [];
    const sumOf = (name: string) => durations.filter((v) => (v as { metricName?: string }).metricName === name).reduce((s, v) => s + v.value, 0);
    return {
      ...finish(spec.messages, clock, wallStart),
      checkpoints: await checkpointRows(join(dir, 'checkpoints', jobName), clock.atBarrier),
      registry: { count: sumOf('cdcflow_checkpoint_duration_seconds_count'), sumSeconds: sumOf('cdcflow_checkpoint_duration_seconds_sum'), lastSizeBytes: sizes[0]?.value ?? 0 },
    };
  } finally {
    if (isMainThread) await rm(dir, { recursive: true, force: true });
  }
}

/** Every completed checkpoint of the run (retention is off): duration, bytes written, state it references. */
async function checkpointRows(jobRoot: string, atBarrier: ReadonlyMap<number, number>): Promise<CheckpointRow[]> {
  const metadata: CheckpointMetadata[] = [];
  for (const name of await readdir(jobRoot)) {
    const file = join(jobRoot, name, METADATA_FILE);
    if (name.startsWith('chk-') && existsSync(file)) metadata.push(parseMetadata(await readFile(file, 'utf8'), file));
  }
  metadata.sort((a, b) => a.checkpointId - b.checkpointId);
  const sizes = new Map<string, number>();
  const rows: CheckpointRow[] = [];
  let before = 0;
  for (const m of metadata) {
    let stateBytes = 0;
    for (const path of m.sharedFiles) {
      if (!sizes.has(path)) sizes.set(path, (await stat(join(jobRoot, path))).size);
      stateBytes += sizes.get(path) ?? 0;
    }
    const seen = atBarrier.get(m.checkpointId) ?? before;
    const bytes = Object.values(m.tasks).reduce((s, t) => s + t.bytes, 0);
    rows.push({ id: m.checkpointId, kind: writtenKind(m), durationMs: m.completedAtMs - m.triggeredAtMs, bytes, stateBytes, changes: seen - before });
    before = seen;
  }
  return rows;
}

function writtenKind(m: CheckpointMetadata): CheckpointRow['kind'] {
  for (const task of Object.values(m.tasks)) {
    const files = (task.keyed as { files?: { kind: 'delta' | 'full'; checkpointId: number }[] } | undefined)?.files ?? [];
    const last = files[files.length - 1];
    if (last !== undefined && last.checkpointId === m.checkpointId) return last.kind;
  }
  return 'none';
}

async function child(spec: ChildSpec): Promise<void> {
  const s = spec.scenario;
  const result = s.kind === 'ceiling' ? await ceiling(spec) : await job(spec, s.pipeline, s.workers, s.parallelism);
  if (result !== undefined) console.log(`RESULT ${JSON.stringify(result)}`);
}

// ---------------------------------------------------------------- parent: rounds and the report

function runChild(spec: ChildSpec): Promise<Result> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let hung: NodeJS.Timeout | undefined;
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      // A child that reported but does not exit left something running (a consumer, a worker).
      hung ??= out.includes('RESULT ') ? setTimeout(() => (console.error(`${label(spec.scenario)}: the child did not exit 30 s after finishing; killed`), proc.kill('SIGKILL')), 30_000) : undefined;
    });
    proc.on('error', reject);
    proc.on('exit', (code) => {
      clearTimeout(hung);
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line !== undefined) resolve(JSON.parse(line.slice('RESULT '.length)) as Result);
      else reject(new Error(`${label(spec.scenario)} run ${spec.run} exited with code ${code}:\n${out}`));
    });
  });
}

function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${availableParallelism()} cores (${cpu}), ${fmt(totalmem() / 2 ** 30, 1)} GiB RAM, Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`;
}

function summaryTable(scenarios: readonly Scenario[], results: readonly Result[][]): void {
  const ceilingRate = median(results[0]?.map(rate) ?? []);
  console.log('\nscenario                                           events/s  per run                       ratio  cores  wall s  peak RSS  checkpoints: median n, duration median / max, bytes median');
  scenarios.forEach((s, i) => {
    const rs = results[i] ?? [];
    const rows = rs.flatMap((r) => r.checkpoints ?? []);
    const checkpoints = rows.length === 0 ? '' : `${median(rs.map((r) => r.checkpoints?.length ?? 0))}, ${fmt(median(rows.map((c) => c.durationMs)))} / ${fmt(Math.max(...rows.map((c) => c.durationMs)))} ms, ${mb(median(rows.map((c) => c.bytes)))}`;
    const cores = median(rs.map((r) => r.cpuSeconds / r.seconds));
    console.log(
      `${label(s).padEnd(48)}${fmt(median(rs.map(rate))).padStart(11)}  ${rs.map((r) => fmt(rate(r))).join(', ').padEnd(29)} ${(median(rs.map(rate)) / ceilingRate).toFixed(3).padStart(5)}  ${cores.toFixed(2).padStart(5)}  ${fmt(median(rs.map((r) => r.wallSeconds)), 1).padStart(6)}  ${`${fmt(median(rs.map((r) => r.maxRssMb)))} MB`.padStart(8)}  ${checkpoints}`,
    );
  });
  scenarios.forEach((s, i) => {
    if (s.kind === 'ceiling') return;
    const per = (results[i] ?? []).map((r) => r.registry).map((x) => `${fmt(((x?.sumSeconds ?? 0) / Math.max(1, x?.count ?? 0)) * 1000)} ms × ${x?.count ?? 0}`);
    console.log(`  ${label(s)} — metrics registry per run: cdcflow_checkpoint_duration_seconds mean ${per.join('; ')}`);
  });
}

/** Each parallel job against the same job at parallelism 1, from the same rounds. */
function speedUpTable(scenarios: readonly Scenario[], results: readonly Result[][]): void {
  console.log('\nparallelism speed-up (same pipeline and decode workers; medians over the rounds)');
  console.log('scenario                                            events/s  speed-up  cores  peak RSS');
  scenarios.forEach((s, i) => {
    if (s.kind === 'ceiling') return;
    const base = scenarios.findIndex((b) => b.kind === 'job' && b.pipeline === s.pipeline && b.workers === s.workers && b.parallelism === 1);
    const rs = results[i] ?? [];
    const speedUp = base < 0 ? '-' : `${(median(rs.map(rate)) / median((results[base] ?? []).map(rate))).toFixed(2)}x`;
    const cores = median(rs.map((r) => r.cpuSeconds / r.seconds));
    console.log(`${label(s).padEnd(50)}${fmt(median(rs.map(rate))).padStart(10)}  ${speedUp.padStart(8)}  ${cores.toFixed(2).padStart(5)}  ${`${fmt(median(rs.map((r) => r.maxRssMb)))} MB`.padStart(8)}`);
  });
}

function checkpointTable(title: string, rows: readonly CheckpointRow[]): void {
  const deltas = rows.filter((c) => c.kind === 'delta' && c.changes > 0);
  const fulls = rows.filter((c) => c.kind === 'full');
  console.log(`\ncheckpoints of ${title}: bytes written follow the changes since the last checkpoint, not the state size`);
  if (deltas.length > 0) {
    const perChange = deltas.map((c) => c.bytes / c.changes);
    console.log(`  ${deltas.length} deltas: ${fmt(Math.min(...perChange))}–${fmt(Math.max(...perChange))} B per change (median ${fmt(median(perChange))}), ${mb(median(deltas.map((c) => c.bytes)))} median, while the state grew to ${mb(Math.max(...rows.map((c) => c.stateBytes)))}`);
  }
  if (fulls.length > 0) console.log(`  ${fulls.length} full snapshots (the delta chain restarts): ${fulls.map((c) => `#${c.id} ${mb(c.bytes)} ${fmt(c.durationMs)} ms`).join(', ')}`);
  console.log('     id  changes    written  kind   B/change  state referenced  duration');
  for (const c of rows) {
    const perChange = c.changes === 0 || c.kind !== 'delta' ? '-' : fmt(c.bytes / c.changes);
    console.log(`  ${String(c.id).padStart(5)}  ${fmt(c.changes).padStart(7)}  ${mb(c.bytes).padStart(9)}  ${c.kind.padEnd(5)}  ${perChange.padStart(8)}  ${mb(c.stateBytes).padStart(16)}  ${fmt(c.durationMs).padStart(5)} ms`);
  }
}

async function main(): Promise<void> {
  const events = Number(values.events);
  const keys = Number(values.keys);
  const runs = Number(values.runs);
  const workers = Number(values.workers);
  const pipelines = values.pipelines.split(',').filter((p): p is Pipeline => p === 'upsert' || p === 'passthrough');
  const parallelisms = values.parallelism.split(',').map(Number);
  console.log(`machine: ${machine()}`);
  if (process.env['KAFKA_BROKERS'] === undefined) await up(selectServices(['kafka']), (line) => console.log(`stack: ${line}`));
  const brokers = endpointsFromEnv().kafkaBrokers.split(',');
  const { topic, messages } = await ensureWorkloadTopic(brokers, events, keys);
  if (runs === 0) return;
  const scenarios: Scenario[] = [{ kind: 'ceiling' }];
  for (const pipeline of pipelines) for (const w of workers > 0 ? [0, workers] : [0]) for (const parallelism of parallelisms) scenarios.push({ kind: 'job', pipeline, workers: w, parallelism });
  const results: Result[][] = scenarios.map(() => []);
  for (let run = 1; run <= runs; run++) {
    for (const [i, scenario] of scenarios.entries()) {
      const stamp = `${process.pid}-${Date.now()}-${i}`;
      const result = await runChild({ scenario, brokers, topic, messages, run, dir: join(tmpdir(), `cdcflow-upsert-bench-${stamp}`), groupId: `bench-${stamp}` });
      results[i]?.push(result);
      console.log(`run ${run}/${runs}  ${label(scenario).padEnd(36)} ${fmt(rate(result)).padStart(9)} events/s  ${fmt(result.wallSeconds, 1)} s wall  ${fmt(result.maxRssMb)} MB peak RSS  load ${loadavg()[0]?.toFixed(2)}`);
    }
  }
  const preset = events === 1_000_000 && keys === 100_000 ? 'preset M' : 'custom size';
  console.log(`\n${fmt(messages)} messages (${preset}: ${fmt(events)} events over ${fmt(keys)} keys), ${runs} round(s); machine at the end: ${machine()}`);
  summaryTable(scenarios, results);
  if (parallelisms.some((p) => p > 1)) speedUpTable(scenarios, results);
  const upsertIndex = scenarios.findIndex((s) => s.kind === 'job' && s.pipeline === 'upsert');
  const rows = results[upsertIndex]?.[0]?.checkpoints;
  if (rows !== undefined) checkpointTable(`${label(scenarios[upsertIndex] as Scenario)}, round 1`, rows);
}

if (values.child !== undefined) await child(JSON.parse(values.child) as ChildSpec);
else await main();
