/**
 * Exactly-once into Kafka across a broker crash. A broker of the test's own
 * (test/support/dedicated-kafka.ts: the stack's Kafka service on free ports and a temporary data
 * folder — the shared broker on 19092 is never touched) holds both the Debezium orders topic and
 * the output topic. jobs/orders-to-kafka.ts (orders → keyBy id → upsert → transactional Kafka sink,
 * 1 s checkpoints, bounded at the end offsets found at start) runs in a child process. Right after
 * the sink pre-committed a transaction — while the job is consuming and a transaction is open or
 * prepared — the broker is SIGKILLed (CDCFLOW_BROKER_SIGNAL=SIGTERM for a controlled shutdown),
 * stays down CDCFLOW_BROKER_DOWN_MS (default 5 s) and starts again on the same ports and data
 * folder, so its transaction coordinator reloads the transactions the job had in flight.
 *
 * The job process must ride it out by itself and finish (exit 0). Then a read_committed reader
 * reads the output topic up to a sentinel written after the job ended: the latest record per id
 * must equal the projection oracle (0 lost, 0 extra, 0 stale), and no change (id, LSN) may appear
 * twice (a transaction committed twice, or an aborted one delivered).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { projectionOracle } from '../../scripts/workload/oracle.ts';
import type { WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { DedicatedKafka } from '../support/dedicated-kafka.ts';
import { uniqueName } from '../support/endpoints.ts';
import { JobProcess } from '../support/job-process.ts';
import { readMessagesUntil } from '../support/kafka-read.ts';
import { rowDifferences } from '../support/orders-check.ts';
import { WorkloadFeeder } from '../support/workload-feeder.ts';

const DOWN_MS = Number(process.env['CDCFLOW_BROKER_DOWN_MS'] ?? 5_000);
const SIGNAL = (process.env['CDCFLOW_BROKER_SIGNAL'] ?? 'SIGKILL') as NodeJS.Signals;
const WORKLOAD: WorkloadOptions = { keys: 5_000, events: 40_000, duplicateFraction: 0.02, seed: 20_251_202 };

const COMMITTED = /checkpoint (\d+) committed: (\d+) records/;
const PREPARED = /checkpoint (\d+) prepared: (\d+) records/;
const ATTEMPT_FAILED = /attempt failed \((.*)\); restart (\d+)\/(\d+)/;
const RESTORING = /restoring from (checkpoint|savepoint) \d+/;
const SENTINEL = 'cdcflow-test-sentinel';

const say = (line: string) => console.log(`[outage kafka] ${line}`);
const topic = uniqueName('outage-kafka-orders');
const target = uniqueName('outage-kafka-latest');
const jobName = uniqueName('outage-orders-to-kafka');
const workDir = mkdtempSync(join(tmpdir(), 'cdcflow-outage-kafka-'));
let broker: DedicatedKafka | undefined;
let job: JobProcess | undefined;
let passed = false;

afterAll(async () => {
  await job?.kill();
  if (passed) {
    await broker?.destroy();
    rmSync(workDir, { recursive: true, force: true });
  } else {
    say(`checkpoints and job state kept in ${workDir}; broker log ${broker?.logFile ?? '-'}`);
    await broker?.destroy(true);
  }
});

interface OutputSummary {
  readonly latest: Map<number, Readonly<Record<string, unknown>>>;
  readonly records: number;
  /** Changes (id, LSN) read more than once. */
  readonly duplicates: string[];
}

/** Everything a read_committed reader sees on the output topic, folded as compaction would. */
function summarize(messages: readonly KafkaMessage[]): OutputSummary {
  const latest = new Map<number, Readonly<Record<string, unknown>>>();
  const seen = new Set<string>();
  const duplicates: string[] = [];
  let records = 0;
  for (const message of messages) {
    const key = message.key?.toString();
    if (key === undefined || key === SENTINEL) continue;
    records += 1;
    const id = Number((JSON.parse(key) as { id: number }).id);
    const change = `${id}@${message.headers?.['cdcflow.position']?.toString() ?? '?'}`;
    if (seen.has(change)) duplicates.push(change);
    seen.add(change);
    if (message.value === null) latest.delete(id);
    else latest.set(id, JSON.parse(message.value.toString()) as Record<string, unknown>);
  }
  return { latest, records, duplicates };
}

describe('orders → Kafka (transactional) across a broker restart', () => {
  it(`finishes by itself after the broker was ${SIGNAL === 'SIGKILL' ? 'killed' : 'stopped'} mid-run, with exactly the oracle's rows`, async () => {
    const t0 = Date.now();
    broker = await DedicatedKafka.create(say);
    await broker.start();
    say(
      `dedicated broker ${broker.brokers} (pid ${broker.pid ?? '?'}, data ${broker.dataDir}) up in ${((Date.now() - t0) / 1000).toFixed(1)} s; topics ${topic} → ${target}`,
    );
    const kafka = new Kafka({ clientId: 'outage-kafka-test', brokers: [broker.brokers], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: target, numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const feeder = new WorkloadFeeder([broker.brokers], topic, WORKLOAD);
    await feeder.open();
    await feeder.feedRest();
    await feeder.close();

    const env = {
      KAFKA_BROKERS: broker.brokers,
      CDCFLOW_TOPIC: topic,
      CDCFLOW_TARGET_TOPIC: target,
      CDCFLOW_BOUNDED: '1',
      CDCFLOW_GROUP_ID: uniqueName('outage-kafka'),
      CDCFLOW_JOB_NAME: jobName,
      CDCFLOW_CHECKPOINT_DIR: join(workDir, 'checkpoints'),
      CDCFLOW_STATE_DIR: join(workDir, 'state'),
      // A rejoin after the crash waits this long for the member the dead attempt left behind.
      CDCFLOW_SESSION_TIMEOUT_MS: '6000',
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
    };
    const echo =
      process.env['CDCFLOW_CHAOS_VERBOSE'] === '1' ? (line: string) => console.log(`  | ${line}`) : undefined;
    const started = Date.now();
    job = JobProcess.start({ file: 'jobs/orders-to-kafka.ts', env, ...(echo === undefined ? {} : { onLine: echo }) });
    await job.waitFor(COMMITTED, 90_000);
    const prepared = await job.waitFor(PREPARED, 60_000, job.lines.length);
    const committedBefore = job.lines.reduce((n, l) => n + Number(COMMITTED.exec(l)?.[2] ?? 0), 0);
    await broker.kill(SIGNAL);
    const killedAt = Date.now();
    expect(job.running, `the job ended before the broker went down\n${job.tail()}`).toBe(true);
    say(
      `broker ${SIGNAL} ${((killedAt - started) / 1000).toFixed(1)} s into the job, right after '${prepared[0]}', ${committedBefore} records committed so far, ${feeder.written} messages in the source topic`,
    );
    await new Promise((resolve) => setTimeout(resolve, DOWN_MS));
    const linesAtRestart = job.lines.length;
    await broker.start();
    const upAt = Date.now();
    say(`broker down ${((upAt - killedAt) / 1000).toFixed(1)} s (${DOWN_MS} ms dead + restart)`);
    const firstCommit = await job.waitFor(COMMITTED, 120_000, linesAtRestart);
    const recoveredAt = Date.now();
    const exit = await job.waitForExit(120_000);
    const finishedAt = Date.now();
    expect(exit, `the job did not finish cleanly\n${job.tail(40)}`).toEqual({ code: 0, signal: null });

    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: target, messages: [{ key: SENTINEL, value: SENTINEL }], acks: -1 });
    await producer.disconnect();
    const messages = await readMessagesUntil(kafka, target, (m) => m.key?.toString() === SENTINEL, {
      timeoutMs: 90_000,
    });
    const output = summarize(messages);
    const oracle = projectionOracle(generateWorkload(WORKLOAD));
    const { lost, extra, stale } = rowDifferences(output.latest, oracle);

    const failures = job.lines.flatMap((l) => {
      const m = ATTEMPT_FAILED.exec(l);
      return m === null ? [] : [{ reason: m[1] ?? '', restart: Number(m[2]) }];
    });
    const restores = job.lines.filter((l) => RESTORING.test(l)).length;
    say(
      `${failures.length} failed attempts (restarts observed), ${restores} restores; reasons: ${[...new Set(failures.map((f) => f.reason.slice(0, 140)))].join(' | ') || '-'}`,
    );
    say(
      `first commit ${((recoveredAt - upAt) / 1000).toFixed(1)} s after the broker was back ('${firstCommit[0]}'); job finished ${((finishedAt - upAt) / 1000).toFixed(1)} s after it, ${((finishedAt - started) / 1000).toFixed(1)} s in all`,
    );
    say(
      `output: ${output.records} committed records, ${output.latest.size} ids, oracle ${oracle.size}: lost ${lost.length}, extra ${extra.length}, stale ${stale.length}, duplicated changes ${output.duplicates.length}`,
    );
    expect(lost.slice(0, 20), `lost ids (of ${lost.length})\n${job.tail(40)}`).toEqual([]);
    expect(extra.slice(0, 20), `extra ids (of ${extra.length})`).toEqual([]);
    expect(stale.slice(0, 20), `stale rows (of ${stale.length})`).toEqual([]);
    expect(output.duplicates.slice(0, 20), `duplicated changes (of ${output.duplicates.length})`).toEqual([]);
    expect(output.latest.size).toBe(oracle.size);
    passed = true;
  });
});
