/**
 * npm run bench -- upsert [--events 1000000] [--keys 100000] [--runs 3] [--workers N]
 *                         [--pipelines upsert,passthrough]      (--runs 0: only produce the topic)
 *
 * The reference projection job (WORKLOAD.md job 1) on the real Kafka, beside its ceiling:
 *   ceiling      a bare kafkajs consumer counting the topic's messages (what the client can fetch);
 *   upsert       debeziumSource(bounded) → keyBy(id) → upsert (RocksDB, checkpoint every 1 s) → discard;
 *   passthrough  debeziumSource(bounded) → discard, checkpoint every 1 s: decoding is most of its work,
 *                so it shows what decode workers can give where decoding is the bottleneck;
 * each job with decode workers 0 (on the job's thread) and N (default: cores − 1, at least 1).
 *
 * The workload (preset M by default) is produced once to a topic named after its parameters and
 * reused while it holds the right number of messages. Every measurement runs in a child process of
 * its own (peak RSS, heap and CPU time are its own); rounds interleave the scenarios so background
 * load hits them alike; figures are medians over the rounds. events/s counts Kafka messages
 * (changes and tombstones) from the first record seen to the last, for the ceiling and the jobs
 * alike; wall time adds start-up, group join and the final checkpoint. "cores" is the child's CPU
 * time (all threads) over that span.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { StreamEnvironment, debeziumSource, type SinkDefinition } from '../../runtime/index.ts';
import { endpointsFromEnv } from '../stack/endpoints.ts';
import { selectServices } from '../stack/services/index.ts';
import { up } from '../stack/stack.ts';
import { finish, mark, newSpan, rate, reportResult, runChild as runMeasurement, type Measured, type Span } from './bench-child.ts';
import { fmt, machine, median } from './bench-format.ts';
import { ensureWorkloadTopic } from './bench-topic.ts';
import { checkpointMetrics, checkpointRows, checkpointSummary, checkpointTable, type CheckpointMetrics, type CheckpointRow } from './checkpoint-report.ts';
import { consumeCeiling } from './consume-ceiling.ts';

type Pipeline = 'upsert' | 'passthrough';
type Scenario = { readonly kind: 'ceiling' } | { readonly kind: 'job'; readonly pipeline: Pipeline; readonly workers: number };
interface ChildSpec {
  readonly scenario: Scenario;
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly messages: number;
  readonly run: number;
}
interface Result extends Measured {
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
    child: { type: 'string' },
  },
});

const label = (s: Scenario): string => (s.kind === 'ceiling' ? 'kafkajs consume (ceiling)' : `${s.pipeline} job, decode workers ${s.workers}`);

// ---------------------------------------------------------------- child: one measurement

interface SinkClock extends Span {
  records: number;
  readonly atBarrier: Map<number, number>;
}

/** Discards what it gets; notes when records pass and how many had passed at each barrier. */
function discardSink(clock: SinkClock): SinkDefinition<unknown> {
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
    }),
  };
}

async function job(spec: ChildSpec, pipeline: Pipeline, workers: number): Promise<Result> {
  const dir = await mkdtemp(join(tmpdir(), 'cdcflow-upsert-bench-'));
  const jobName = `${pipeline}-bench-w${workers}-r${spec.run}`;
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
    const clock: SinkClock = { ...newSpan(), records: 0, atBarrier: new Map() };
    const source = env.fromSource(debeziumSource({ topics: [spec.topic], groupId: `${jobName}-${process.pid}-${Date.now()}`, brokers: spec.brokers, bounded: 'latest', decodeWorkers: workers }));
    if (pipeline === 'upsert') source.keyBy((e) => e.key?.['id'] as number).upsert().sinkTo(discardSink(clock));
    else source.sinkTo(discardSink(clock));
    await env.execute();
    return {
      ...finish(spec.messages, clock, wallStart),
      checkpoints: await checkpointRows(join(dir, 'checkpoints', jobName), clock.atBarrier),
      registry: await checkpointMetrics(env.metrics.registry),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function child(spec: ChildSpec): Promise<void> {
  const s = spec.scenario;
  reportResult(s.kind === 'ceiling' ? await consumeCeiling(spec.brokers, spec.topic, spec.messages) : await job(spec, s.pipeline, s.workers));
}

// ---------------------------------------------------------------- parent: rounds and the report

function runChild(spec: ChildSpec): Promise<Result> {
  return runMeasurement<Result>(fileURLToPath(import.meta.url), spec, `${label(spec.scenario)} run ${spec.run}`);
}

function summaryTable(scenarios: readonly Scenario[], results: readonly Result[][]): void {
  const ceilingRate = median(results[0]?.map(rate) ?? []);
  console.log('\nscenario                               events/s  per run                       ratio  cores  wall s  peak RSS  checkpoints: median n, duration median / max, bytes median');
  scenarios.forEach((s, i) => {
    const rs = results[i] ?? [];
    const checkpoints = checkpointSummary(rs.flatMap((r) => r.checkpoints ?? []), rs.map((r) => r.checkpoints ?? []));
    const cores = median(rs.map((r) => r.cpuSeconds / r.seconds));
    console.log(
      `${label(s).padEnd(36)}${fmt(median(rs.map(rate))).padStart(11)}  ${rs.map((r) => fmt(rate(r))).join(', ').padEnd(29)} ${(median(rs.map(rate)) / ceilingRate).toFixed(3).padStart(5)}  ${cores.toFixed(2).padStart(5)}  ${fmt(median(rs.map((r) => r.wallSeconds)), 1).padStart(6)}  ${`${fmt(median(rs.map((r) => r.maxRssMb)))} MB`.padStart(8)}  ${checkpoints}`,
    );
  });
  scenarios.forEach((s, i) => {
    if (s.kind === 'ceiling') return;
    const per = (results[i] ?? []).map((r) => r.registry).map((x) => `${fmt(((x?.sumSeconds ?? 0) / Math.max(1, x?.count ?? 0)) * 1000)} ms × ${x?.count ?? 0}`);
    console.log(`  ${label(s)} — metrics registry per run: cdcflow_checkpoint_duration_seconds mean ${per.join('; ')}`);
  });
}

async function main(): Promise<void> {
  const events = Number(values.events);
  const keys = Number(values.keys);
  const runs = Number(values.runs);
  const workers = Number(values.workers);
  const pipelines = values.pipelines.split(',').filter((p): p is Pipeline => p === 'upsert' || p === 'passthrough');
  console.log(`machine: ${machine()}`);
  if (process.env['KAFKA_BROKERS'] === undefined) await up(selectServices(['kafka']), (line) => console.log(`stack: ${line}`));
  const brokers = endpointsFromEnv().kafkaBrokers.split(',');
  const { topic, messages } = await ensureWorkloadTopic(brokers, events, keys);
  if (runs === 0) return;
  const scenarios: Scenario[] = [{ kind: 'ceiling' }];
  for (const pipeline of pipelines) for (const w of workers > 0 ? [0, workers] : [0]) scenarios.push({ kind: 'job', pipeline, workers: w });
  const results: Result[][] = scenarios.map(() => []);
  for (let run = 1; run <= runs; run++) {
    for (const [i, scenario] of scenarios.entries()) {
      const result = await runChild({ scenario, brokers, topic, messages, run });
      results[i]?.push(result);
      console.log(`run ${run}/${runs}  ${label(scenario).padEnd(36)} ${fmt(rate(result)).padStart(9)} events/s  ${fmt(result.wallSeconds, 1)} s wall  ${fmt(result.maxRssMb)} MB peak RSS  load ${loadavg()[0]?.toFixed(2)}`);
    }
  }
  const preset = events === 1_000_000 && keys === 100_000 ? 'preset M' : 'custom size';
  console.log(`\n${fmt(messages)} messages (${preset}: ${fmt(events)} events over ${fmt(keys)} keys), ${runs} round(s); machine at the end: ${machine()}`);
  summaryTable(scenarios, results);
  const upsertIndex = scenarios.findIndex((s) => s.kind === 'job' && s.pipeline === 'upsert');
  const rows = results[upsertIndex]?.[0]?.checkpoints;
  if (rows !== undefined) checkpointTable(`${label(scenarios[upsertIndex] as Scenario)}, round 1`, rows);
}

if (values.child !== undefined) await child(JSON.parse(values.child) as ChildSpec);
else await main();
