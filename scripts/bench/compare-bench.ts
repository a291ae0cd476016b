/**
 * npm run bench -- compare [--peers flink,kstreams,quix] [--jobs upsert,windows] [--parallelism 1,2]
 *                          [--rounds 3] [--preset S|M | --events N --keys K] [--timeout-s 900]
 *
 * The reference jobs (WORKLOAD.md) on cdcflow and on its peers, side by side on one topic:
 * Flink 2.2 (local MiniCluster, RocksDB incremental checkpoints every 1 s, exactly-once, bloom
 * filters on), Kafka Streams 3.9 (exactly_once_v2, RocksDB stores, commit interval 1 s) and Quix
 * Streams (exactly-once, RocksDB state, commit interval 1 s), each written as its users write it
 * (scripts/bench/peers/, built on first use into .cdcflow/peers/). The workload topic is the one
 * `npm run bench -- upsert` produces and reuses. Rounds interleave the systems (cdcflow, flink,
 * kstreams, quix, cdcflow, …) so background load hits them alike. events/s counts the topic's
 * Kafka messages over the span from the first record to the last; CPU is the process's (all
 * threads) over that span; peak RSS is the process's high-water mark. Every run is checked against
 * the same oracle (compare-oracle.ts). A peer that fails to build or run is reported as failed.
 *
 * Semantics that cannot match: Kafka Streams and Quix have a grace period against their stream
 * time (the maximum event time seen, after the repartition by status over all source partitions),
 * not bounded out-of-orderness + allowed lateness (a watermark that is the minimum over source
 * partitions). Each runs in two variants: `grace` (the plain windowed aggregation, grace 35 s =
 * 5 s + 30 s) and `per-partition` (the job applies the reference lateness rule per source
 * partition before the repartition, then windows with a grace of one day).
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread } from 'node:worker_threads';
import { Kafka, logLevel } from 'kafkajs';
import { kafkaClientConfig, resolveKafkaConnection } from '../../operators/kafka-connection.ts';
import { StreamEnvironment, debeziumSource, type SinkDefinition, type TableChange } from '../../runtime/index.ts';
import { endpointsFromEnv } from '../stack/endpoints.ts';
import { generateWorkload } from '../workload/generator.ts';
import { centsToDecimal, decimalToCents } from '../workload/orders-model.ts';
import { possiblyLate } from '../workload/revenue-oracle-bounds.ts';
import type { OracleRecord, RevenueWindow } from '../workload/revenue-oracle.ts';
import { finish, mark, newSpan, rate, reportResult, runChild, type Measured, type Span } from './bench-child.ts';
import { fmt, loadAverage, machine } from './bench-format.ts';
import { benchWorkload, ensureWorkloadTopic } from './bench-topic.ts';
import {
  ProjectionDigestOracle,
  projectionMismatch,
  windowsVerdict,
  type LateRecordId,
  type ProjectionDigest,
  type WindowsOutput,
} from './compare-oracle.ts';
import { RAW_CONSUME, compareTable, targetsTable, type CompareRow, type CompareRun } from './compare-report.ts';
import { consumeCeiling } from './consume-ceiling.ts';
import { PEERS, PEER_VERSIONS, buildPeer, type PeerLaunch, type PeerName } from './peers/peer-build.ts';
import { runPeer } from './peers/peer-run.ts';

type Job = 'upsert' | 'windows';
type Lateness = 'grace' | 'per-partition';
interface System {
  readonly name: string;
  readonly engine: 'cdcflow' | 'raw' | PeerName;
  readonly lateness?: Lateness;
}

const { values } = parseArgs({
  options: {
    peers: { type: 'string', default: PEERS.join(',') },
    jobs: { type: 'string', default: 'upsert,windows' },
    parallelism: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    preset: { type: 'string' },
    events: { type: 'string' },
    keys: { type: 'string' },
    'timeout-s': { type: 'string', default: '900' },
    child: { type: 'string' },
  },
});

// ---------------------------------------------------------------- child: the raw client, same topic, same round

/** The kafkajs consumer the source is built on, counting the topic with decoding off (consume-ceiling.ts). */
interface CeilingSpec {
  readonly ceiling: true;
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly messages: number;
}

// ---------------------------------------------------------------- child: cdcflow's projection, with the digest

interface UpsertSpec {
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly messages: number;
  readonly parallelism: number;
  readonly dir: string;
  readonly groupId: string;
}
interface UpsertResult extends Measured {
  readonly digest: ProjectionDigest;
}
interface SinkClock extends Span {
  records: number;
  readonly live: Map<unknown, bigint>;
}

/** Discards the changes but keeps the live rows' amounts, for the oracle (the peers keep the same in their operators). */
function digestSink(
  clock: SinkClock,
  spanFile: string | undefined,
): SinkDefinition<TableChange<number, { amount: string }>> {
  return {
    name: 'digest',
    createOperator: () => ({
      processBatch(batch) {
        clock.records += batch.length;
        mark(clock);
        for (const { value: change } of batch) {
          if (change.kind === 'upsert') clock.live.set(change.key, decimalToCents(change.row.amount));
          else clock.live.delete(change.key);
        }
      },
      close() {
        if (spanFile === undefined || clock.first === 0) return;
        const at = (t: number) => performance.timeOrigin + t;
        const cents = [...clock.live.values()].reduce((a, b) => a + b, 0n);
        appendFileSync(
          spanFile,
          `${JSON.stringify({ first: at(clock.first), last: at(clock.last), cpuAtFirst: clock.cpuAtFirst, cpuAtLast: clock.cpuAtLast, keys: clock.live.size, cents: String(cents) })}\n`,
        );
      },
    }),
  };
}

async function cdcflowUpsert(spec: UpsertSpec): Promise<UpsertResult | undefined> {
  const spanFile = spec.parallelism > 1 ? join(spec.dir, 'spans.jsonl') : undefined;
  const jobName = `compare-upsert-p${spec.parallelism}`;
  try {
    const wallStart = Date.now();
    const env = StreamEnvironment.create({
      jobName,
      parallelism: spec.parallelism,
      checkpoints: { intervalMs: 1000, dir: join(spec.dir, 'checkpoints'), retain: 100_000 },
      state: { backend: 'rocksdb', dir: join(spec.dir, 'state') },
      restore: 'none',
      restart: { maxAttempts: 0 },
      log: (line) => (line.includes('aborted') ? console.error(`[${jobName}] ${line}`) : undefined),
    });
    const clock: SinkClock = { ...newSpan(), records: 0, live: new Map() };
    env
      .fromSource(
        debeziumSource<{ amount: string }>({
          topics: [spec.topic],
          groupId: spec.groupId,
          brokers: spec.brokers,
          bounded: 'latest',
          decodeWorkers: 0,
        }),
      )
      .keyBy((e) => e.key?.['id'] as number)
      .upsert()
      .sinkTo(digestSink(clock, isMainThread ? undefined : spanFile));
    await env.execute();
    if (!isMainThread) return undefined; // a subtask worker: the child's main thread reports
    let digest: ProjectionDigest = {
      keys: clock.live.size,
      amount: centsToDecimal([...clock.live.values()].reduce((a, b) => a + b, 0n)),
    };
    if (spanFile !== undefined && existsSync(spanFile)) {
      const spans = readFileSync(spanFile, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Span & { keys: number; cents: string });
      const first = spans.reduce((a, b) => (a.first <= b.first ? a : b));
      const last = spans.reduce((a, b) => (a.last >= b.last ? a : b));
      Object.assign(clock, {
        first: first.first - performance.timeOrigin,
        cpuAtFirst: first.cpuAtFirst,
        last: last.last - performance.timeOrigin,
        cpuAtLast: last.cpuAtLast,
      });
      digest = {
        keys: spans.reduce((n, s) => n + s.keys, 0),
        amount: centsToDecimal(spans.reduce((n, s) => n + BigInt(s.cents), 0n)),
      };
    }
    return { ...finish(spec.messages, clock, wallStart), digest };
  } finally {
    if (isMainThread) await rm(spec.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- parent

interface Oracle {
  readonly digest: ProjectionDigest;
  readonly records?: OracleRecord[];
  readonly possiblyLate?: Set<number>;
}

function oracleOf(events: number, keys: number, withWindows: boolean): Oracle {
  const projection = new ProjectionDigestOracle();
  const records: OracleRecord[] = [];
  for (const record of generateWorkload(benchWorkload(events, keys))) {
    projection.push(record);
    if (!withWindows) continue;
    const { seq, partition, id, event } = record;
    const slim =
      event === null
        ? null
        : {
            op: event.op,
            after: event.after === null ? null : { status: event.after.status, amount: event.after.amount },
            source: { ts_ms: event.source.ts_ms, lsn: event.source.lsn },
          };
    records.push({ seq, partition, id, event: slim as OracleRecord['event'] });
  }
  return withWindows
    ? { digest: projection.result(), records, possiblyLate: possiblyLate(records) }
    : { digest: projection.result() };
}

function windowsOutputOf(lines: readonly Record<string, unknown>[]): WindowsOutput {
  const windows = new Map<string, RevenueWindow>();
  const late: LateRecordId[] = [];
  for (const line of lines) {
    const w = line['window'] as RevenueWindow | undefined;
    // A window fires again on late data (Flink's allowed lateness): the last row per window is its final result.
    if (w !== undefined) windows.set(`${w.windowStart}|${w.status}`, w);
    const l = line['late'] as LateRecordId | undefined;
    if (l !== undefined) late.push(l);
  }
  return { windows: [...windows.values()], late };
}

function windowsOracleText(oracle: Oracle, output: WindowsOutput): string {
  const verdict = windowsVerdict(oracle.records ?? [], output, oracle.possiblyLate);
  if (verdict.problems.length === 0) return '';
  if (verdict.consistent)
    return `windows match its own late set, which holds ${fmt(verdict.droppedOnTime)} on-time events (of ${fmt(verdict.late)} late)`;
  return `MISMATCH: ${verdict.problems.join('; ')}`;
}

async function deleteTopicsOf(brokers: readonly string[], marker: string): Promise<void> {
  const admin = new Kafka(
    kafkaClientConfig(resolveKafkaConnection({ brokers }), { clientId: 'cdcflow-compare', logLevel: logLevel.NOTHING }),
  ).admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.includes(marker));
    if (topics.length > 0) await admin.deleteTopics({ topics });
  } catch {
    // Internal topics left behind are named after the run; nothing else depends on them.
  } finally {
    await admin.disconnect();
  }
}

interface RunContext {
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly messages: number;
  readonly oracle: Oracle;
  readonly launches: Map<PeerName, PeerLaunch | Error>;
  readonly timeoutMs: number;
}

async function runOnce(
  ctx: RunContext,
  job: Job | 'consume',
  parallelism: number,
  system: System,
  round: number,
): Promise<CompareRun> {
  const stamp = `${process.pid}-${Date.now()}`;
  const dir = await mkdtemp(join(tmpdir(), `cdcflow-compare-${system.engine}-`));
  const groupId = `compare-${system.engine}-${job}-p${parallelism}-r${round}-${stamp}`;
  try {
    if (system.engine === 'raw') {
      const r = await runChild<Measured>(
        fileURLToPath(import.meta.url),
        { ceiling: true, brokers: ctx.brokers, topic: ctx.topic, messages: ctx.messages } satisfies CeilingSpec,
        'raw kafkajs consume',
      );
      return {
        eventsPerSecond: rate(r),
        cpuSeconds: r.cpuSeconds,
        messages: r.messages,
        peakRssMb: r.maxRssMb,
        oracle: '',
      };
    }
    if (system.engine === 'cdcflow') {
      if (job === 'upsert') {
        const r = await runChild<UpsertResult>(
          fileURLToPath(import.meta.url),
          {
            brokers: ctx.brokers,
            topic: ctx.topic,
            messages: ctx.messages,
            parallelism,
            dir,
            groupId,
          } satisfies UpsertSpec,
          `cdcflow upsert p=${parallelism}`,
        );
        return {
          eventsPerSecond: rate(r),
          cpuSeconds: r.cpuSeconds,
          messages: r.messages,
          peakRssMb: r.maxRssMb,
          oracle: projectionMismatch(r.digest, ctx.oracle.digest).join('; '),
        };
      }
      const windowsBench = fileURLToPath(new URL('./windows-bench.ts', import.meta.url));
      const r = await runChild<Measured & { output: { windows: RevenueWindow[]; lateLsns: number[] } }>(
        windowsBench,
        { scenario: 'windows', brokers: ctx.brokers, topic: ctx.topic, messages: ctx.messages, run: round },
        'cdcflow windows',
      );
      return {
        eventsPerSecond: rate(r),
        cpuSeconds: r.cpuSeconds,
        messages: r.messages,
        peakRssMb: r.maxRssMb,
        oracle: windowsOracleText(ctx.oracle, {
          windows: r.output.windows,
          late: r.output.lateLsns.map((lsn) => ({ lsn })),
        }),
      };
    }
    const launch = ctx.launches.get(system.engine);
    if (launch === undefined || launch instanceof Error)
      return { oracle: '', error: `build failed: ${launch?.message ?? 'not built'}` };
    const out = join(dir, 'out.jsonl');
    const args = [
      '--job',
      job,
      '--brokers',
      ctx.brokers.join(','),
      '--topic',
      ctx.topic,
      '--group',
      groupId,
      '--parallelism',
      String(parallelism),
      '--dir',
      join(dir, 'state'),
      '--out',
      out,
    ];
    if (system.engine !== 'flink')
      args.push(
        '--messages',
        String(ctx.messages),
        '--lateness',
        system.lateness === 'per-partition' ? 'per-partition' : 'stream-time',
        '--timeout-s',
        String(ctx.timeoutMs / 1000),
      );
    const m = await runPeer(launch, args, out, ctx.timeoutMs, (line) => console.log(`  ${system.name}: ${line}`));
    let oracle: string;
    if (job === 'upsert') {
      const digest = m.lines.find((l) => 'keys' in l) as ProjectionDigest | undefined;
      // Flink writes one digest per subtask.
      const sum = m.lines.filter((l) => 'keys' in l).map((l) => l as unknown as ProjectionDigest);
      oracle =
        digest === undefined
          ? 'no output'
          : projectionMismatch(
              {
                keys: sum.reduce((n, d) => n + d.keys, 0),
                amount: centsToDecimal(
                  sum.reduce((n, d) => n + decimalToCents(d.amount.includes('.') ? d.amount : `${d.amount}.00`), 0n),
                ),
              },
              ctx.oracle.digest,
            ).join('; ');
    } else {
      oracle = windowsOracleText(ctx.oracle, windowsOutputOf(m.lines));
    }
    return {
      eventsPerSecond: ctx.messages / m.seconds,
      cpuSeconds: m.cpuSeconds,
      messages: ctx.messages,
      peakRssMb: m.maxRssMb,
      oracle,
    };
  } catch (error) {
    return { oracle: '', error: (error as Error).message.split('\n')[0]?.slice(0, 300) ?? 'failed' };
  } finally {
    await rm(dir, { recursive: true, force: true });
    if (system.engine === 'kstreams' || system.engine === 'quix') await deleteTopicsOf(ctx.brokers, groupId);
  }
}

function systemsFor(job: Job, parallelism: number, peers: readonly PeerName[]): System[] {
  const systems: System[] = [{ name: 'cdcflow', engine: 'cdcflow' }];
  for (const peer of peers) {
    // Quix scales out by processes (one consumer each), not threads: p=1 only.
    if (peer === 'quix' && parallelism > 1) continue;
    if (job === 'windows' && peer !== 'flink') {
      systems.push({ name: `${peer} (grace 35 s)`, engine: peer, lateness: 'grace' });
      systems.push({ name: `${peer} (lateness per source partition)`, engine: peer, lateness: 'per-partition' });
    } else systems.push({ name: peer, engine: peer });
  }
  return systems;
}

/** Java and Python as the peers run them, and the peers' pinned versions. */
function versions(): string {
  const firstLine = (command: string, args: string[]): string => {
    try {
      // `java -version` writes to stderr, `python --version` to stdout.
      const out = spawnSync(command, args, { encoding: 'utf8' });
      return `${out.stdout}${out.stderr}`.trim().split('\n')[0] ?? `${command} ?`;
    } catch {
      return `no ${command}`;
    }
  };
  return `${firstLine('java', ['-version'])}; ${firstLine('python3.11', ['--version'])}; ${Object.values(PEER_VERSIONS).join(', ')}`;
}

async function main(): Promise<void> {
  const preset = values.preset?.toUpperCase();
  const [events, keys] =
    preset === 'M'
      ? [1_000_000, 100_000]
      : preset === 'S' || (values.events === undefined && preset === undefined)
        ? [100_000, 10_000]
        : [Number(values.events), Number(values.keys ?? Math.max(1, Math.round(Number(values.events) / 10)))];
  const jobs = values.jobs.split(',').filter((j): j is Job => j === 'upsert' || j === 'windows');
  const peers = values.peers.split(',').filter((p): p is PeerName => (PEERS as readonly string[]).includes(p));
  const parallelisms = values.parallelism.split(',').map(Number);
  const rounds = Number(values.rounds);
  const timeoutMs = Number(values['timeout-s']) * 1000;
  console.log(`machine: ${machine()}`);
  const brokers = endpointsFromEnv().kafkaBrokers.split(',');
  const launches = new Map<PeerName, PeerLaunch | Error>();
  for (const peer of peers) {
    try {
      launches.set(peer, await buildPeer(peer, (line) => console.log(`peers: ${line}`)));
    } catch (error) {
      console.error(`peers: ${peer} did not build: ${(error as Error).message}`);
      launches.set(peer, error as Error);
    }
  }
  const { topic, messages } = await ensureWorkloadTopic(brokers, events, keys);
  console.log(`oracle: generating the same workload (${fmt(events)} events over ${fmt(keys)} keys)`);
  const oracle = oracleOf(events, keys, jobs.includes('windows'));
  console.log(
    `oracle: ${fmt(oracle.digest.keys)} live keys, amounts ${oracle.digest.amount}${oracle.possiblyLate === undefined ? '' : `; ${fmt(oracle.possiblyLate.size)} events the reference rule may call late`}`,
  );
  const ctx: RunContext = { brokers, topic, messages, oracle, launches, timeoutMs };
  // Each round first reads the topic with the raw client: the ceiling cdcflow's rates are a share of.
  const groups: { job: Job | 'consume'; parallelism: number; systems: System[] }[] = [
    { job: 'consume', parallelism: 1, systems: [{ name: RAW_CONSUME, engine: 'raw' }] },
  ];
  for (const job of jobs)
    for (const parallelism of parallelisms) {
      // windows-bench runs the revenue windows at parallelism 1 only; so does the comparison.
      if (job === 'windows' && parallelism > 1) continue;
      groups.push({ job, parallelism, systems: systemsFor(job, parallelism, peers) });
    }
  const rows: CompareRow[] = groups.flatMap((g) =>
    g.systems.map((s) => ({ job: g.job, parallelism: g.parallelism, system: s.name, runs: [] as CompareRun[] })),
  );
  const loads: string[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const group of groups) {
      for (const system of group.systems) {
        const load = loadAverage();
        loads.push(load.split(' ')[0] ?? '');
        const run = await runOnce(ctx, group.job, group.parallelism, system, round);
        (
          rows.find((r) => r.job === group.job && r.parallelism === group.parallelism && r.system === system.name)
            ?.runs as CompareRun[]
        ).push(run);
        const what =
          run.error !== undefined
            ? `FAILED: ${run.error}`
            : `${fmt(run.eventsPerSecond ?? NaN)} events/s, ${fmt(run.cpuSeconds ?? NaN, 1)} CPU s, ${fmt(run.peakRssMb ?? NaN)} MB peak RSS, oracle: ${run.oracle === '' ? 'matched' : run.oracle}`;
        console.log(
          `round ${round}/${rounds}  ${group.job} p=${group.parallelism}  ${system.name.padEnd(38)} ${what}  (load ${load})`,
        );
      }
    }
  }
  const size =
    preset === 'M' || (events === 1_000_000 && keys === 100_000)
      ? 'preset M'
      : events === 100_000 && keys === 10_000
        ? 'preset S'
        : 'custom size';
  console.log(
    `\n${fmt(messages)} messages on ${topic} (${size}: ${fmt(events)} events over ${fmt(keys)} keys), ${rounds} interleaved round(s), medians; 1-minute load average at each run's start ${loads.join(', ')}`,
  );
  console.log(`machine at the end: ${machine()}`);
  console.log(`versions: ${versions()}\n`);
  console.log(compareTable(rows));
  console.log(
    '\n"cdcflow ×" is cdcflow\'s median events/s over the system\'s (above 1: cdcflow is faster); the range is per round.',
  );
  console.log(`\nIssue 16's targets, from this run:\n\n${targetsTable(rows)}`);
}

if (values.child !== undefined) {
  const spec = JSON.parse(values.child) as UpsertSpec | CeilingSpec;
  const result =
    'ceiling' in spec ? await consumeCeiling(spec.brokers, spec.topic, spec.messages) : await cdcflowUpsert(spec);
  if (result !== undefined) reportResult(result);
} else await main();
