/**
 * npm run bench -- sinks [--events 200000] [--keys events/10] [--rate 10000] [--seconds 20] [--runs 3]
 *                        [--sinks pg,pg-idem,kafka,redis,es] [--phases throughput,freshness]
 *
 * The reference projection (Debezium → keyBy id → upsert → sink, checkpoints every 1 s) into each
 * sink — Postgres two-phase (`pg`), Postgres idempotent (`pg-idem`), Kafka transactional, Redis
 * fenced batch, Elasticsearch — in two phases, each job in a child process of its own
 * (sinks-bench-child.ts):
 *
 *   throughput  the workload topic (`--events` over `--keys`, produced once, reused) read as fast as
 *               it goes: Kafka messages / (first record at the sink → its last commit);
 *   freshness   a paced producer offers `--rate` events/s, each with source.ts_ms = now, while the
 *               job runs; after warm-up (a first probe seen in the sink, then 1 s), `--seconds` of it
 *               are measured. Source commit → visible is reported twice: by an independent observer
 *               (probe inserts every 50 ms, looked for in the sink every 20 ms: a read_committed
 *               consumer, SELECT, MGET, realtime mget), and from the job's own
 *               cdcflow_sink_freshness_seconds histogram (bucket resolution).
 *
 * Rounds interleave the sinks so background load hits them alike; figures are medians over rounds.
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { endpointsFromEnv, type ServiceEndpoints } from '../stack/endpoints.ts';
import { selectServices } from '../stack/services/index.ts';
import { up } from '../stack/stack.ts';
import { startPacedProducer } from '../workload/paced-producer.ts';
import { runChild, startChild } from './bench-child.ts';
import { fmt, loadAverage, machine, median } from './bench-format.ts';
import { ensureWorkloadTopic } from './bench-topic.ts';
import { quantile } from './histogram-summary.ts';
import { splitProbes, type ProbeSplit } from './probe-timing.ts';
import type { ChildResult, ChildSpec } from './sinks-bench-child.ts';
import {
  SINK_KINDS,
  SINK_LABELS,
  createTarget,
  createTopic,
  deleteTopics,
  dropTarget,
  openProbe,
  targetSpec,
  type SinkKind,
  type TargetSpec,
} from './sink-targets.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '200000' },
    keys: { type: 'string' },
    rate: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '20' },
    runs: { type: 'string', default: '3' },
    sinks: { type: 'string', default: SINK_KINDS.join(',') },
    phases: { type: 'string', default: 'throughput,freshness' },
  },
});

const CHILD = fileURLToPath(new URL('./sinks-bench-child.ts', import.meta.url));
const POLL_MS = 20;
/** Warm-up ends once a probe became visible within this long of its source commit... */
const CAUGHT_UP_MS = 3000;
/** ...or after this long: the pipeline cannot keep up with the offered rate. */
const WARMUP_CATCH_UP_MS = 30_000;

/** Whether the probe seen last (highest id) became visible within `ms`. */
function lastSeenWithin(seen: ReadonlyMap<number, number>, ms: number): boolean {
  let last = -1;
  for (const id of seen.keys()) if (id > last) last = id;
  return last >= 0 && (seen.get(last) as number) <= ms;
}

interface FreshnessResult {
  readonly offered: number;
  /** Observer: source commit → seen by a reader, ms, for the probes of the measured window. */
  readonly observed: readonly number[];
  readonly probesMissing: number;
  readonly job: ChildResult;
  /** Per probe seen: read lag, queue wait before the sink, after the sink (probe-timing.ts). */
  readonly split: ProbeSplit;
  /** 1-minute load average at the end of the run. */
  readonly load: number;
}
interface Round {
  readonly throughput: ChildResult | undefined;
  readonly freshness: FreshnessResult;
}

const tagOf = (kind: SinkKind, run: number) => `${kind}-r${run}-${randomUUID().slice(0, 6)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function throughput(
  kind: SinkKind,
  run: number,
  endpoints: ServiceEndpoints,
  topic: string,
  messages: number,
): Promise<ChildResult> {
  const tag = tagOf(kind, run);
  const target = targetSpec(kind, tag, endpoints);
  const spec: ChildSpec = { phase: 'throughput', target, topic, messages, jobName: `sinks-bench-${tag}` };
  await createTarget(target);
  try {
    return await runChild<ChildResult>(CHILD, spec, `${SINK_LABELS[kind]} throughput run ${run}`);
  } finally {
    await dropTarget(target, spec.jobName);
  }
}

/** Polls the sink for the probes not yet seen until `stop`; one query in flight at a time. */
function observe(target: TargetSpec, outstanding: Map<number, number>, seen: Map<number, number>) {
  let stopped = false;
  const done = (async () => {
    const probe = await openProbe(target);
    try {
      while (!stopped) {
        const ids = [...outstanding.keys()];
        if (ids.length > 0) {
          for (const [id, at] of await probe.visible(ids)) {
            seen.set(id, at - (outstanding.get(id) as number));
            outstanding.delete(id);
          }
        }
        await sleep(POLL_MS);
      }
    } finally {
      await probe.close();
    }
  })();
  return { stop: async () => ((stopped = true), await done) };
}

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await sleep(50);
  return condition();
}

async function freshness(
  kind: SinkKind,
  run: number,
  endpoints: ServiceEndpoints,
  rate: number,
  seconds: number,
  keys: number,
): Promise<FreshnessResult> {
  const tag = tagOf(kind, run);
  const target = targetSpec(kind, tag, endpoints);
  const topic = `bench.sinks.live.${tag}`;
  const spec: ChildSpec = { phase: 'freshness', target, topic, messages: 0, jobName: `sinks-bench-${tag}` };
  await createTarget(target);
  await createTopic(target, topic, 6); // before the job subscribes to it
  const outstanding = new Map<number, number>(); // probe id → source.ts_ms
  const seen = new Map<number, number>(); // probe id → ms until visible
  const window = { from: Infinity, to: Infinity };
  const inWindow = new Map<number, number>(); // probe id → source.ts_ms, measured ones
  let ready = false;
  const child = startChild<ChildResult>(CHILD, spec, `${SINK_LABELS[kind]} freshness run ${run}`, (line) =>
    line === 'READY' ? (ready = true) : console.log(line),
  );
  let exited = false;
  child.result.then(
    () => (exited = true),
    () => (exited = true), // the rejection itself surfaces where the result is awaited
  );
  const observer = observe(target, outstanding, seen);
  try {
    if (!(await until(() => ready || exited, 120_000)) || exited)
      throw new Error(`${SINK_LABELS[kind]}: the job did not open its sink within 120 s (or exited)`);
    const producer = await startPacedProducer({
      brokers: endpoints.kafkaBrokers.split(','),
      topic,
      rate,
      workload: { keys, partitions: 6 },
      onProbe: (id, ts) => {
        outstanding.set(id, ts);
        if (ts >= window.from && ts <= window.to) inWindow.set(id, ts);
      },
    });
    // Warm-up: the job has joined its group and committed a first checkpoint, then worked off the
    // backlog of its start (a probe visible within CAUGHT_UP_MS), for at most WARMUP_CATCH_UP_MS:
    // the window measures the steady state, or an overloaded pipeline if it never catches up.
    const warm = await until(() => seen.size > 0, 120_000);
    const warmFrom = Date.now();
    const caughtUp = await until(() => lastSeenWithin(seen, CAUGHT_UP_MS), WARMUP_CATCH_UP_MS);
    console.log(
      `  warm-up: ${caughtUp ? 'caught up' : 'not caught up'} after ${fmt((Date.now() - warmFrom) / 1000, 1)} s (a probe visible within ${CAUGHT_UP_MS} ms)`,
    );
    await sleep(1000);
    window.from = Date.now();
    child.send('measure');
    await sleep(seconds * 1000);
    window.to = Date.now();
    child.send('window-end');
    const sent = await producer.stop();
    if (!warm) console.error(`${SINK_LABELS[kind]}: no probe became visible during warm-up`);
    await until(() => [...inWindow.keys()].every((id) => seen.has(id)), 30_000);
    child.send('stop');
    const job = await child.result;
    const observed = [...inWindow.keys()].flatMap((id) => (seen.has(id) ? [seen.get(id) as number] : []));
    const probes = new Map(
      [...inWindow].flatMap(([id, sourceTs]) =>
        seen.has(id) ? [[id, { sourceTs, visibleAfter: seen.get(id) as number }] as const] : [],
      ),
    );
    const split = splitProbes(probes, job.probes?.fetched ?? {}, job.probes?.arrived ?? {});
    return {
      offered: sent.events / sent.seconds,
      observed,
      probesMissing: inWindow.size - observed.length,
      job,
      split,
      load: Number(loadavg()[0]?.toFixed(2)),
    };
  } catch (error) {
    child.send('stop');
    // A child that failed says why better than our timeout does.
    throw (
      (await child.result.then(
        () => undefined,
        (e: unknown) => e,
      )) ?? error
    );
  } finally {
    await observer.stop();
    await dropTarget(target, spec.jobName);
    await deleteTopics(target, [topic, `${topic}.dlq`]);
  }
}

const ms = (x: number) => (Number.isFinite(x) ? fmt(x) : '-');
const sec = (x: number) => (Number.isFinite(x) ? fmt(x * 1000) : '-');

function report(kinds: readonly SinkKind[], rounds: ReadonlyMap<SinkKind, Round[]>): void {
  console.log(
    '\nthroughput (workload read as fast as it goes)          freshness at the offered rate: source commit → visible, ms',
  );
  console.log(
    'sink                  events/s  per run               cores  RSS MB |  offered/s  observer p50    p99    max  probes | job histogram p50    p99   mean | commit p50    p99',
  );
  for (const kind of kinds) {
    const rs = rounds.get(kind) ?? [];
    const t = rs.flatMap((r) => (r.throughput === undefined ? [] : [r.throughput]));
    const f = rs.map((r) => r.freshness);
    const rate = (r: ChildResult) => r.messages / r.seconds;
    const observed = (q: number) => median(f.map((x) => quantile(x.observed, q)));
    const job = f.map((x) => x.job);
    console.log(
      `${SINK_LABELS[kind].padEnd(20)}${fmt(median(t.map(rate))).padStart(10)}  ${t
        .map((r) => fmt(rate(r)))
        .join(', ')
        .padEnd(20)}` +
        `${median(t.map((r) => r.cpuSeconds / r.seconds))
          .toFixed(2)
          .padStart(6)} ${fmt(median(t.map((r) => r.maxRssMb))).padStart(6)} |` +
        `${fmt(median(f.map((x) => x.offered))).padStart(11)} ${ms(observed(0.5)).padStart(12)} ${ms(observed(0.99)).padStart(6)} ${ms(observed(1)).padStart(6)} ${String(median(f.map((x) => x.observed.length))).padStart(7)} |` +
        `${sec(median(job.map((j) => j.freshness.p50))).padStart(18)} ${sec(median(job.map((j) => j.freshness.p99))).padStart(6)} ${sec(median(job.map((j) => j.freshness.mean))).padStart(6)} |` +
        `${sec(median(job.map((j) => j.commit.p50))).padStart(11)} ${sec(median(job.map((j) => j.commit.p99))).padStart(6)}`,
    );
    const cad = f.flatMap((x) => (x.job.cadence === undefined ? [] : [x.job.cadence]));
    if (cad.length > 0)
      console.log(
        `  ${SINK_LABELS[kind]}: ${fmt(median(cad.map((c) => c.commitsPerMinute)), 1)} sink commits per minute at the offered rate (median of rounds)`,
      );
    const missing = f.reduce((n, x) => n + x.probesMissing, 0);
    if (missing > 0)
      console.log(
        `  ${SINK_LABELS[kind]}: ${missing} probe(s) of the measured windows never became visible within 30 s`,
      );
  }
}

const p50p99 = (xs: readonly number[]) => `${ms(quantile(xs, 0.5))}/${ms(quantile(xs, 0.99))}`;

/** One line per freshness run: the table row of docs/freshness.md. */
function splitLine(f: FreshnessResult): string {
  const achieved = f.job.cadence?.arrivalsPerSecond ?? NaN;
  const readLag = f.job.readLag === undefined ? '-' : `${ms(f.job.readLag.p50)}/${ms(f.job.readLag.p99)}`;
  return (
    `split (ms p50/p99): offered ${fmt(f.offered)}/s, achieved ${fmt(achieved)} changes/s at the sink, observer ${p50p99(f.observed)}; ` +
    `per probe (${f.split.readLag.length}): read lag ${p50p99(f.split.readLag)}, queue wait ${p50p99(f.split.queueWait)}, after sink ${p50p99(f.split.afterSink)}; ` +
    `read lag of every message ${readLag}; ${fmt(f.job.cadence?.commitsPerMinute ?? NaN, 1)} commits/min; load ${f.load}`
  );
}

async function main(): Promise<void> {
  const events = Number(values.events);
  const keys = values.keys === undefined ? Math.max(1, Math.round(events / 10)) : Number(values.keys);
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const runs = Number(values.runs);
  const kinds = values.sinks.split(',').map((s) => s.trim()) as SinkKind[];
  const phases = new Set(values.phases.split(',').map((s) => s.trim()));
  const unknown = kinds.filter((k) => !(SINK_KINDS as readonly string[]).includes(k));
  if (unknown.length > 0)
    throw new Error(`--sinks: unknown ${unknown.join(', ')}; choose from ${SINK_KINDS.join(',')}`);
  console.log(`machine: ${machine()}`);
  if (process.env['KAFKA_BROKERS'] === undefined)
    await up(selectServices(['kafka', 'postgres', 'redis', 'elasticsearch']), (line) => console.log(`stack: ${line}`));
  const endpoints = endpointsFromEnv();
  const { topic, messages } = await ensureWorkloadTopic(
    endpoints.kafkaBrokers.split(','),
    events,
    keys,
    'bench.sinks.orders',
  );
  const rounds = new Map<SinkKind, Round[]>(kinds.map((k) => [k, []]));
  for (let run = 1; run <= runs; run++) {
    for (const kind of kinds) {
      const t = phases.has('throughput') ? await throughput(kind, run, endpoints, topic, messages) : undefined;
      const f = await freshness(kind, run, endpoints, rate, seconds, keys);
      rounds.get(kind)?.push({ throughput: t, freshness: f });
      const tp =
        t === undefined
          ? '(no throughput phase)'
          : `${fmt(t.messages / t.seconds).padStart(8)} events/s (${fmt(t.seconds, 1)} s, ${t.checkpoints} commits)`;
      console.log(
        `run ${run}/${runs}  ${SINK_LABELS[kind].padEnd(20)} ${tp}` +
          `  freshness at ${fmt(f.offered)}/s: observer p50 ${ms(quantile(f.observed, 0.5))} p99 ${ms(quantile(f.observed, 0.99))} max ${ms(quantile(f.observed, 1))} ms (${f.observed.length} probes),` +
          ` job p50 ${sec(f.job.freshness.p50)} p99 ${sec(f.job.freshness.p99)} ms (${fmt(f.job.freshness.count)} changes)  load ${loadAverage()}`,
      );
      const c = f.job.cadence;
      if (c !== undefined) {
        const pair = (x: { p50: number; p99: number }) => `${ms(x.p50)}/${ms(x.p99)}`;
        console.log(
          `           checkpoints at the sink: ${c.commitsPerMinute.toFixed(1)} commits/min; ms p50/p99: source → sink arrival ${pair(c.arrival)}, barrier gap ${pair(c.barrierGap)}, trigger → durable ${pair(c.checkpointDuration)} (keyed state sync ${pair(c.stateSnapshotSync)}, async ${pair(c.stateSnapshotAsync)}), pre-commit ${pair(c.preCommit)}, prepared → commit delivered ${pair(c.toCommit)}, commit call ${pair(c.commitCall)}`,
        );
      }
      console.log(`           ${splitLine(f)}`);
    }
  }
  console.log(
    `\n${fmt(messages)} messages (${fmt(events)} events over ${fmt(keys)} keys); freshness: ${fmt(rate)} events/s offered for ${seconds} s; ${runs} round(s), medians; checkpoints every 1 s`,
  );
  console.log(`machine at the end: ${machine()}`);
  report(kinds, rounds);
  const offered = [...rounds.values()].flat().map((r) => r.freshness.offered);
  if (offered.some((o) => o < 0.9 * rate)) {
    console.log(
      `note: the producer offered ${fmt(Math.min(...offered))}–${fmt(Math.max(...offered))} events/s, below the ${fmt(rate)} asked: the machine could not keep up (see the load average); freshness is then that of an overloaded pipeline`,
    );
  }
}

await main();
