/**
 * One measurement of the sinks benchmark, in a process of its own (sinks-bench.ts starts it with
 * `--child <spec>`): the reference projection (jobs/orders-projection.ts: Debezium → keyBy id →
 * upsert on RocksDB → sink) into one sink, checkpoints every 1 s.
 *
 *   throughput  bounded, over the pre-produced workload topic as fast as it goes; the span runs from
 *               the first record reaching the sink to the end of its last commit (the sink's close);
 *   freshness   unbounded, on the live topic the parent produces into: prints READY once the sink is
 *               open, on the line `measure` resets its sink histograms (so warm-up is not counted)
 *               and starts timing checkpoints at the sink until `window-end`; on `stop` stops the
 *               job and reports them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ordersProjectionJob } from '../../jobs/orders-projection.ts';
import { SINK_COMMIT_SECONDS, SINK_VISIBILITY_SECONDS } from '../../operators/sinks/sink-metrics.ts';
import { StreamEnvironment, type Operator, type SinkDefinition } from '../../runtime/index.ts';
import { debeziumSource } from '../../operators/sources/kafka/debezium-source.ts';
import { KafkajsFetcher } from '../../operators/sources/kafka/kafkajs-fetcher.ts';
import type { Order } from '../../jobs/orders-projection.ts';
import { histogramSummary, quantile } from './histogram-summary.ts';
import { newProbeTimes, noteProbeArrivals, timedFetcher, type ProbeTimes } from './probe-timing.ts';
import { sinkFor, sourceGroupOf, type TargetSpec } from './sink-targets.ts';

export interface ChildSpec {
  readonly phase: 'throughput' | 'freshness';
  readonly target: TargetSpec;
  readonly topic: string;
  readonly messages: number;
  readonly jobName: string;
}

/** From the job's own histograms (seconds). */
export interface HistogramFigures {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p99: number;
}

export interface ChildResult {
  /** Kafka messages of the topic the run covered (throughput phase). */
  readonly messages: number;
  /** Table changes that reached the sink. */
  readonly records: number;
  readonly seconds: number;
  readonly wallSeconds: number;
  readonly cpuSeconds: number;
  readonly maxRssMb: number;
  readonly checkpoints: number;
  readonly freshness: HistogramFigures;
  readonly commit: HistogramFigures;
  /** Freshness phase, measured window only: where a checkpoint's time goes at the sink. */
  readonly cadence?: CheckpointCadence;
  /** Freshness phase: probe id → wall-clock ms handed to the source / reaching the sink (probe-timing.ts). */
  readonly probes?: { readonly fetched: Record<string, number>; readonly arrived: Record<string, number> };
  /** Freshness phase, measured window: broker timestamp → handed to the source, every message, ms. */
  readonly readLag?: { readonly p50: number; readonly p99: number };
}

/** Per checkpoint that reached the sink in the measured window (ms, medians and p99 over them). */
export interface CheckpointCadence {
  /** Sink commits (notifyCheckpointComplete) per minute. */
  readonly commitsPerMinute: number;
  /** Table changes reaching the sink per second in the measured window (what the job achieved). */
  readonly arrivalsPerSecond: number;
  /** Between two barriers reaching the sink. */
  readonly barrierGap: { readonly p50: number; readonly p99: number };
  /** The sink's pre-commit (flush + PREPARE). */
  readonly preCommit: { readonly p50: number; readonly p99: number };
  /** Pre-commit done → commit delivered to the sink (other acks, metadata, the loop's next gap). */
  readonly toCommit: { readonly p50: number; readonly p99: number };
  /** The commit call (COMMIT PREPARED …). */
  readonly commitCall: { readonly p50: number; readonly p99: number };
  /** Trigger → metadata durable (the job's cdcflow_checkpoint_duration_seconds, bucket resolution), ms. */
  readonly checkpointDuration: { readonly p50: number; readonly p99: number };
  /** The keyed state's snapshot at the barrier (on the loop) and its file write until durable (off it), ms. */
  readonly stateSnapshotSync: { readonly p50: number; readonly p99: number };
  readonly stateSnapshotAsync: { readonly p50: number; readonly p99: number };
  /** Source commit → the change reaches the sink (before any checkpoint): the pipeline's queue, not the commit path. */
  readonly arrival: { readonly p50: number; readonly p99: number };
}

interface CheckpointTimes {
  barrier: number;
  prepared?: number;
  commitStart?: number;
  commitEnd?: number;
}

interface SinkClock {
  /** Set on `measure`: from then on, checkpoints are timed. */
  measuringSince?: number;
  readonly times: Map<number, CheckpointTimes>;
  /** Source commit → arrival at the sink, ms, one per change (measured window). */
  readonly arrivals: number[];
  first: number;
  last: number;
  cpuAtFirst: number;
  cpuAtLast: number;
  records: number;
  checkpoints: number;
}

const cpuSeconds = (): number => {
  const cpu = process.cpuUsage();
  return (cpu.user + cpu.system) / 1e6;
};

/** The sink as it is, with the clock noting when records arrive and when its work ends. */
function timed<T>(
  sink: SinkDefinition<T>,
  clock: SinkClock,
  probes: ProbeTimes,
  onOpen: () => void,
): SinkDefinition<T> {
  const mark = () => {
    clock.last = performance.now();
    clock.cpuAtLast = cpuSeconds();
  };
  return {
    name: sink.name,
    createOperator: (): Operator<T, never> => {
      const op = sink.createOperator();
      const onWatermark = op.onWatermark?.bind(op);
      const onProcessingTime = op.onProcessingTime?.bind(op);
      return {
        async open(context, restored) {
          await op.open?.(context, restored);
          onOpen();
        },
        async processBatch(batch, out) {
          if (clock.first === 0) {
            clock.first = performance.now();
            clock.cpuAtFirst = cpuSeconds();
          }
          clock.records += batch.length;
          noteProbeArrivals(
            probes,
            batch.map((r) => r.value),
            Date.now(),
          );
          if (clock.measuringSince !== undefined) {
            const now = Date.now();
            for (const { value } of batch) {
              const ts = (value as { sourceTsMs?: number }).sourceTsMs;
              if (ts !== undefined) clock.arrivals.push(now - ts);
            }
          }
          await op.processBatch(batch, out);
          mark();
        },
        async snapshotState(id) {
          const times: CheckpointTimes | undefined =
            clock.measuringSince === undefined ? undefined : { barrier: performance.now() };
          if (times !== undefined) clock.times.set(id, times);
          const snapshot = await op.snapshotState?.(id);
          if (times !== undefined) times.prepared = performance.now();
          return snapshot;
        },
        async notifyCheckpointComplete(id) {
          const started = performance.now();
          await op.notifyCheckpointComplete?.(id);
          const ended = performance.now();
          for (const [n, times] of clock.times)
            if (n <= id && times.commitStart === undefined)
              Object.assign(times, { commitStart: started, commitEnd: ended });
          clock.checkpoints += 1;
          mark();
        },
        notifyCheckpointAborted: (id) => op.notifyCheckpointAborted?.(id),
        ...(onWatermark === undefined ? {} : { onWatermark }),
        ...(onProcessingTime === undefined ? {} : { onProcessingTime }),
        async close() {
          await op.close?.();
          mark();
        },
      };
    },
  };
}

function cadenceOf(
  clock: SinkClock,
  until: number,
): Omit<CheckpointCadence, 'checkpointDuration' | 'stateSnapshotSync' | 'stateSnapshotAsync'> | undefined {
  if (clock.measuringSince === undefined) return undefined;
  const all = [...clock.times.entries()].sort(([a], [b]) => a - b).map(([, t]) => t);
  const commits = new Set(all.flatMap((t) => (t.commitEnd === undefined ? [] : [t.commitEnd]))).size;
  const stat = (xs: number[]) => ({ p50: quantile(xs, 0.5), p99: quantile(xs, 0.99) });
  const gaps = all.slice(1).map((t, i) => t.barrier - (all[i] as CheckpointTimes).barrier);
  const done = all.filter(
    (t) => t.prepared !== undefined && t.commitStart !== undefined,
  ) as Required<CheckpointTimes>[];
  return {
    commitsPerMinute: (commits * 60_000) / (until - clock.measuringSince),
    arrivalsPerSecond: (clock.arrivals.length * 1000) / (until - clock.measuringSince),
    barrierGap: stat(gaps),
    preCommit: stat(done.map((t) => t.prepared - t.barrier)),
    toCommit: stat(done.map((t) => t.commitStart - t.prepared)),
    commitCall: stat(done.map((t) => t.commitEnd - t.commitStart)),
    arrival: stat(clock.arrivals),
  };
}

async function cadenceField(
  env: StreamEnvironment,
  clock: SinkClock,
  until: number,
): Promise<{ cadence?: CheckpointCadence }> {
  const cadence = cadenceOf(
    { ...clock, times: new Map([...clock.times].filter(([, t]) => t.barrier <= until)) },
    until,
  );
  if (cadence === undefined) return {};
  const msOf = async (name: string) => {
    const h = await histogramSummary(env.metrics.registry, name);
    return { p50: h.quantile(0.5) * 1000, p99: h.quantile(0.99) * 1000 };
  };
  return {
    cadence: {
      ...cadence,
      checkpointDuration: await msOf('cdcflow_checkpoint_duration_seconds'),
      stateSnapshotSync: await msOf('cdcflow_state_snapshot_sync_seconds'),
      stateSnapshotAsync: await msOf('cdcflow_state_snapshot_async_seconds'),
    },
  };
}

async function figures(env: StreamEnvironment, name: string): Promise<HistogramFigures> {
  const h = await histogramSummary(env.metrics.registry, name);
  return { count: h.count, mean: h.mean, p50: h.quantile(0.5), p99: h.quantile(0.99) };
}

async function run(spec: ChildSpec): Promise<ChildResult> {
  const dir = await mkdtemp(join(tmpdir(), 'cdcflow-sinks-bench-'));
  process.env['KAFKA_BROKERS'] = spec.target.endpoints.kafkaBrokers;
  try {
    const wallStart = Date.now();
    const env = StreamEnvironment.create({
      jobName: spec.jobName,
      // CDCFLOW_BENCH_MAX_CONCURRENT=1 compares with one checkpoint at a time (the job default is 2).
      checkpoints: { intervalMs: 1000, dir: join(dir, 'checkpoints'), ...maxConcurrentFromEnv() },
      state: { backend: 'rocksdb', dir: join(dir, 'state') },
      restore: 'none',
      restart: { maxAttempts: 0 },
      log: (line) =>
        (line.includes('aborted') && !line.includes('coordinator stopped')) || line.includes('failed')
          ? console.error(`[${spec.jobName}] ${line}`)
          : undefined,
    });
    const clock: SinkClock = {
      times: new Map(),
      arrivals: [],
      first: 0,
      last: 0,
      cpuAtFirst: 0,
      cpuAtLast: 0,
      records: 0,
      checkpoints: 0,
    };
    const live = spec.phase === 'freshness';
    const probes = newProbeTimes();
    const sink = timed(sinkFor(spec.target), clock, probes, () => (live ? console.log('READY') : undefined));
    const groupId = sourceGroupOf(spec.jobName);
    // The freshness phase times every delivery of the Kafka client (probe-timing.ts).
    const source = live
      ? debeziumSource<Order>({
          topics: [spec.topic],
          groupId,
          fetcher: timedFetcher(
            new KafkajsFetcher({
              brokers: spec.target.endpoints.kafkaBrokers.split(','),
              topics: [spec.topic],
              groupId,
              clientId: `${spec.jobName}-orders-source`,
              ...fetcherOptionsFromEnv(),
            }),
            probes,
          ),
          ...sourceOptionsFromEnv(),
        })
      : undefined;
    ordersProjectionJob(env, { topic: spec.topic, groupId, bounded: !live }, sink, source);
    let measuredUntil = Infinity;
    if (live) {
      const lines = createInterface({ input: process.stdin });
      lines.on('line', (line) => {
        if (line === 'measure') {
          for (const name of [
            SINK_VISIBILITY_SECONDS,
            SINK_COMMIT_SECONDS,
            'cdcflow_checkpoint_duration_seconds',
            'cdcflow_state_snapshot_sync_seconds',
            'cdcflow_state_snapshot_async_seconds',
          ])
            env.metrics.registry.getSingleMetric(name)?.reset();
          clock.measuringSince = performance.now();
          probes.measuring = true;
        }
        // The end of the parent's measured window (the producer stops then).
        if (line === 'window-end') {
          measuredUntil = performance.now();
          probes.measuring = false;
        }
        if (line === 'stop') {
          if (measuredUntil === Infinity) measuredUntil = performance.now();
          void env.stop();
        }
      });
    }
    await env.execute();
    process.stdin.destroy();
    return {
      messages: spec.messages,
      records: clock.records,
      seconds: (clock.last - clock.first) / 1000,
      wallSeconds: (Date.now() - wallStart) / 1000,
      cpuSeconds: clock.cpuAtLast - clock.cpuAtFirst,
      maxRssMb: process.resourceUsage().maxRSS / 1024,
      checkpoints: clock.checkpoints,
      freshness: await figures(env, SINK_VISIBILITY_SECONDS),
      commit: await figures(env, SINK_COMMIT_SECONDS),
      ...(await cadenceField(env, clock, measuredUntil)),
      ...(live
        ? {
            probes: { fetched: Object.fromEntries(probes.fetched), arrived: Object.fromEntries(probes.arrived) },
            readLag: { p50: quantile(probes.readLags, 0.5), p99: quantile(probes.readLags, 0.99) },
          }
        : {}),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const { values } = parseArgs({ options: { child: { type: 'string' } } });
if (values.child !== undefined) {
  const result = await run(JSON.parse(values.child) as ChildSpec);
  console.log(`RESULT ${JSON.stringify(result)}`);
  // Clients that linger (a DLQ producer, a pool) must not hold the benchmark up.
  setTimeout(() => process.exit(0), 2000).unref();
}

function maxConcurrentFromEnv(): { maxConcurrent?: number } {
  const raw = process.env['CDCFLOW_BENCH_MAX_CONCURRENT'];
  return raw === undefined || raw === '' ? {} : { maxConcurrent: Number(raw) };
}

/** CDCFLOW_BENCH_SOURCE_BUFFER_BYTES / _MS: the source's in-flight bounds (A/B). */
function sourceOptionsFromEnv(): { maxBufferedBytes?: number; maxBufferedMs?: number } {
  const bytes = process.env['CDCFLOW_BENCH_SOURCE_BUFFER_BYTES'];
  // CDCFLOW_BENCH_SOURCE_BUFFER_MS: `maxBufferedMs` (sources that have it; 'Infinity' = bytes only).
  const ms = process.env['CDCFLOW_BENCH_SOURCE_BUFFER_MS'];
  return {
    ...(bytes === undefined || bytes === '' ? {} : { maxBufferedBytes: Number(bytes) }),
    ...(ms === undefined || ms === '' ? {} : { maxBufferedMs: Number(ms) }),
  };
}

/** CDCFLOW_BENCH_FETCH_PARTITION_BYTES: the client's `maxBytesPerPartition`. */
function fetcherOptionsFromEnv(): { maxBytesPerPartition?: number } {
  const raw = process.env['CDCFLOW_BENCH_FETCH_PARTITION_BYTES'];
  return raw === undefined || raw === '' ? {} : { maxBytesPerPartition: Number(raw) };
}
