/**
 * npm run bench -- harness [--events 300000] [--keys 30000] [--runs 3] [--pipelines upsert,passthrough]
 *                          [--checkpoint-ms 1000]
 *
 * The reference projection job in-process, without Kafka: the real debeziumSource (decoding,
 * fetch buffer, positions) over a fetcher that hands out the generated workload from memory in
 * batches like kafkajs's (about 1 MiB per partition fetch), → keyBy(id) → upsert (RocksDB,
 * checkpoint every 1 s) → discard. What it measures is the framework's own cost per event — the
 * part `npm run bench -- upsert` adds on top of the Kafka client — and, being a single thread with
 * no broker, its CPU time per event (the job thread's own, from /proc, beside the whole process's)
 * stays comparable on a loaded machine where events/s does not.
 * Profile it with: node --cpu-prof --import tsx scripts/bench/harness-bench.ts --runs 1
 * (summarise: npx tsx scripts/bench/cpu-profile-summary.ts FILE --after workloadBatches).
 * `--checkpoint-ms 60000` leaves checkpoints out of an A/B of the record path: at 1 s their count,
 * and so their CPU, follows each run's wall time, which the machine's load decides.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { FetchedBatch, Fetcher } from '../../operators/sources/kafka/fetcher.ts';
import type { RawMessage } from '../../operators/sources/kafka/raw-message.ts';
import { StreamEnvironment, debeziumSource, type SinkDefinition } from '../../runtime/index.ts';
import { generateWorkload } from '../workload/generator.ts';
import { fmt, machine, median } from './bench-format.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '300000' },
    keys: { type: 'string', default: '30000' },
    runs: { type: 'string', default: '3' },
    pipelines: { type: 'string', default: 'upsert,passthrough' },
    'checkpoint-ms': { type: 'string', default: '1000' },
  },
});

const TOPIC = 'harness.orders';
const FETCH_BYTES = 1024 * 1024;

/** The workload per partition as kafkajs would deliver it: batches of about FETCH_BYTES. */
function workloadBatches(events: number, keys: number): { batches: FetchedBatch[]; messages: number } {
  const perPartition = new Map<number, RawMessage[]>();
  let messages = 0;
  for (const record of generateWorkload({ seed: 1, events, keys, partitions: 6 })) {
    let list = perPartition.get(record.partition);
    if (list === undefined) perPartition.set(record.partition, (list = []));
    list.push({
      topic: TOPIC,
      partition: record.partition,
      offset: String(list.length),
      key: record.key,
      value: record.value,
      timestampMs: 0,
    });
    messages += 1;
  }
  // Interleave the partitions batch by batch, as one consumer fetching all six does.
  const queues = [...perPartition.entries()].map(([partition, list]) => ({ partition, list, at: 0 }));
  const batches: FetchedBatch[] = [];
  while (queues.some((q) => q.at < q.list.length)) {
    for (const q of queues) {
      const taken: RawMessage[] = [];
      let bytes = 0;
      while (q.at < q.list.length && bytes < FETCH_BYTES) {
        const m = q.list[q.at++] as RawMessage;
        taken.push(m);
        bytes += (m.key?.length ?? 0) + (m.value?.length ?? 0);
      }
      if (taken.length > 0)
        batches.push({ topic: TOPIC, partition: q.partition, messages: taken, nextOffset: String(q.at), bytes });
    }
  }
  return { batches, messages };
}

function memoryFetcher(batches: readonly FetchedBatch[]): Fetcher {
  const ends = new Map<string, { high: string; low: string }>();
  for (const b of batches) ends.set(`${b.topic}:${b.partition}`, { high: b.nextOffset, low: '0' });
  let stopped = false;
  return {
    async start(deliver) {
      // Like kafkajs: each delivery is awaited, so a full buffer holds the "fetch loop" back.
      void (async () => {
        for (const batch of batches) {
          if (stopped) return;
          await deliver(batch);
        }
      })();
      await Promise.resolve();
    },
    commit: () => Promise.resolve(),
    endOffsets: () => Promise.resolve(ends),
    assignment: () => [...ends.keys()],
    stop: () => {
      stopped = true;
      return Promise.resolve();
    },
  };
}

interface Outcome {
  readonly seconds: number;
  /** All threads: the job's, RocksDB's and libuv's pools, the GC's helpers. */
  readonly cpuSeconds: number;
  /** The job's own thread only (Linux); what contention from other processes barely changes. */
  readonly mainCpuSeconds: number;
  readonly checkpoints: number;
}

/** CPU seconds of this process's main thread, from /proc (NaN where there is none). */
function mainThreadCpuSeconds(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

async function runJob(pipeline: string, batches: readonly FetchedBatch[], run: number): Promise<Outcome> {
  const dir = await mkdtemp(join(tmpdir(), 'cdcflow-harness-'));
  try {
    const env = StreamEnvironment.create({
      jobName: `harness-${pipeline}-${run}`,
      checkpoints: { intervalMs: Number(values['checkpoint-ms']), dir: join(dir, 'checkpoints') },
      state: { backend: 'rocksdb', dir: join(dir, 'state') },
      restore: 'none',
      restart: { maxAttempts: 0 },
      log: () => undefined,
    });
    const discard: SinkDefinition<unknown> = {
      name: 'discard',
      createOperator: () => ({ processBatch: () => undefined }),
    };
    const noLetters = { open: () => Promise.resolve(), write: () => Promise.resolve(), close: () => Promise.resolve() };
    const source = env.fromSource(
      debeziumSource({
        topics: [TOPIC],
        groupId: 'harness',
        bounded: 'latest',
        fetcher: memoryFetcher(batches),
        deadLetters: noLetters,
      }),
    );
    if (pipeline === 'upsert')
      source
        .keyBy((e) => e.key?.['id'] as number)
        .upsert()
        .sinkTo(discard);
    else source.sinkTo(discard);
    const cpu0 = process.cpuUsage();
    const main0 = mainThreadCpuSeconds();
    const t0 = performance.now();
    await env.execute();
    const cpu = process.cpuUsage(cpu0);
    const mainCpuSeconds = mainThreadCpuSeconds() - main0;
    const count =
      (await env.metrics.registry.getSingleMetric('cdcflow_checkpoints_total')?.get())?.values.reduce(
        (s, v) => s + v.value,
        0,
      ) ?? 0;
    return {
      seconds: (performance.now() - t0) / 1000,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      mainCpuSeconds,
      checkpoints: count,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const { batches, messages } = workloadBatches(Number(values.events), Number(values.keys));
console.log(`machine: ${machine()}`);
console.log(`harness: ${fmt(messages)} messages (${values.events} events over ${values.keys} keys)`);
for (const pipeline of values.pipelines.split(',')) {
  const outcomes: Outcome[] = [];
  for (let run = 1; run <= Number(values.runs); run++) {
    const o = await runJob(pipeline, batches, run);
    outcomes.push(o);
    const us = (seconds: number): string => ((seconds / messages) * 1e6).toFixed(1).padStart(6);
    console.log(
      `run ${run}  ${pipeline.padEnd(11)} ${fmt(messages / o.seconds).padStart(8)} events/s  ${us(o.mainCpuSeconds)} µs job-thread CPU/event  ${us(o.cpuSeconds)} µs process CPU/event  ${o.checkpoints} checkpoints  load ${loadavg()[0]?.toFixed(2)}`,
    );
  }
  const perEvent = (f: (o: Outcome) => number): string =>
    (median(outcomes.map((o) => f(o) / messages)) * 1e6).toFixed(1);
  console.log(
    `RESULT ${pipeline.padEnd(11)} median ${fmt(median(outcomes.map((o) => messages / o.seconds)))} events/s, ${perEvent((o) => o.mainCpuSeconds)} µs job-thread CPU/event, ${perEvent((o) => o.cpuSeconds)} µs process CPU/event`,
  );
}
