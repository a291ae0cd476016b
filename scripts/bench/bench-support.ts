/**
 * What every benchmark shares: the machine line, number formatting and medians, the reference
 * workload topic (produced once, reused), and running one measurement in a child process of its
 * own (so peak RSS, heap and CPU time are its own).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import type { Registry } from 'prom-client';
import { produceWorkload } from '../workload/producer.ts';

export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
export const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
export const mb = (bytes: number): string => `${fmt(bytes / 1e6, 1)} MB`;
export const loadAverage = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

/** Cores, CPU model, RAM, Node and the load average right now: print it next to every figure. */
export function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${availableParallelism()} cores (${cpu}), ${fmt(totalmem() / 2 ** 30, 1)} GiB RAM, Node ${process.version}, load average ${loadAverage()}`;
}

/**
 * The reference workload (seed 1, 6 partitions) in a topic named `<prefix>.seed1.e<events>.k<keys>.p6`,
 * produced once and reused while it holds the number of messages recorded when it was produced
 * (`.cdcflow/bench/<topic>.json`). Each benchmark uses its own prefix: a topic is only ever
 * re-produced (deleted first) by the benchmark that owns it.
 */
export async function ensureWorkloadTopic(brokers: readonly string[], events: number, keys: number, prefix = 'bench.orders'): Promise<{ topic: string; messages: number }> {
  const topic = `${prefix}.seed1.e${events}.k${keys}.p6`;
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

/** A benchmark child: its `RESULT <json>` line, and a way to send it lines on stdin. */
export interface BenchChild<R> {
  readonly result: Promise<R>;
  send(line: string): void;
}

/**
 * Runs `script --child <spec JSON>` under the same Node flags (tsx) and resolves with the JSON the
 * child printed after `RESULT `. Other stdout lines go to `onLine`; stderr is inherited.
 */
export function startChild<R>(script: string, spec: unknown, name: string, onLine: (line: string) => void = () => undefined): BenchChild<R> {
  const proc = spawn(process.execPath, [...process.execArgv, script, '--child', JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const result = new Promise<R>((resolve, reject) => {
    let out = '';
    let pending = '';
    let hung: NodeJS.Timeout | undefined;
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (!line.startsWith('RESULT ')) onLine(line);
      // A child that reported but does not exit left something running (a consumer, a worker).
      hung ??= out.includes('RESULT ') ? setTimeout(() => (console.error(`${name}: the child did not exit 30 s after finishing; killed`), proc.kill('SIGKILL')), 30_000) : undefined;
    });
    proc.on('error', reject);
    proc.on('exit', (code) => {
      clearTimeout(hung);
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line !== undefined) resolve(JSON.parse(line.slice('RESULT '.length)) as R);
      else reject(new Error(`${name} exited with code ${code}:\n${out}`));
    });
  });
  proc.stdin.on('error', () => undefined); // the child may exit before reading what we sent
  return { result, send: (line) => void proc.stdin.write(`${line}\n`) };
}

export function runChild<R>(script: string, spec: unknown, name: string): Promise<R> {
  return startChild<R>(script, spec, name).result;
}

/** A histogram of a job's registry, summed over its series, with quantiles as Prometheus computes them. */
export interface HistogramSummary {
  readonly count: number;
  readonly mean: number;
  /** `histogram_quantile(q, …)`: linear within the bucket; the highest finite bound if it falls in +Inf. */
  quantile(q: number): number;
}

export async function histogramSummary(registry: Registry, name: string): Promise<HistogramSummary> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  const buckets = new Map<number, number>();
  let count = 0;
  let sum = 0;
  for (const v of values) {
    const metric = (v as { metricName?: string }).metricName;
    if (metric === `${name}_bucket`) {
      const le = v.labels['le'];
      const bound = le === '+Inf' ? Infinity : Number(le);
      buckets.set(bound, (buckets.get(bound) ?? 0) + v.value);
    } else if (metric === `${name}_count`) count += v.value;
    else if (metric === `${name}_sum`) sum += v.value;
  }
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  return {
    count,
    mean: count === 0 ? NaN : sum / count,
    quantile(q) {
      if (count === 0) return NaN;
      const rank = q * count;
      let lower = 0;
      let below = 0;
      for (const bound of bounds) {
        const cumulative = buckets.get(bound) ?? 0;
        if (cumulative >= rank) {
          if (bound === Infinity) return lower;
          return cumulative === below ? bound : lower + ((bound - lower) * (rank - below)) / (cumulative - below);
        }
        lower = bound;
        below = cumulative;
      }
      return lower;
    },
  };
}

/** The q-quantile of raw samples (nearest rank). */
export function quantile(xs: readonly number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}
