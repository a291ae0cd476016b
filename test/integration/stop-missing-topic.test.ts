/**
 * Issue 11: a job stopped while its Kafka source kept retrying a topic that does not exist
 * lingered after "stopped": the source's retry/back-off went on (kafkajs retrier, consumer
 * restarts) and logged after the job said it had stopped. Stop must cancel it at once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { rootLogger, setRootLogger } from '../../operators/logger.ts';
import { collectSink } from '../../operators/sinks/collect-sink.ts';
import { debeziumSource } from '../../operators/sources/kafka/debezium-source.ts';
import { StreamEnvironment } from '../../runtime/index.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { RunFolders, startParallelJob, type JobSpec } from '../support/parallel-runs.ts';

const work = mkdtempSync(join(tmpdir(), 'cdcflow-stop-missing-topic-'));
const previousRoot = rootLogger();
const folders = new RunFolders();
afterAll(() => {
  setRootLogger(previousRoot);
  folders.cleanup();
  rmSync(work, { recursive: true, force: true });
});

describe('stopping a job whose source waits for a missing topic', () => {
  it('ends within the deadline and nothing retries after "stopped"', async () => {
    const lines: { atMs: number; msg: string }[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          for (const line of chunk.toString().split('\n').filter(Boolean))
            lines.push({ atMs: Date.now(), msg: String((JSON.parse(line) as { msg?: unknown }).msg) });
          done();
        },
      }),
    );
    setRootLogger(logger);
    const jobName = uniqueName('stop-missing-topic');
    const env = StreamEnvironment.create({
      jobName,
      checkpoints: { dir: work, intervalMs: 500 },
      state: { backend: 'memory' },
      lifecycle: { handleSignals: false, stopDeadlineMs: 10_000 },
      restart: { maxAttempts: 100, initialDelayMs: 200 },
      logger,
    });
    const topic = uniqueName('no-such-topic');
    env
      .fromSource(
        debeziumSource({
          brokers: testEndpoints().kafkaBrokers.split(','),
          topics: [topic],
          groupId: uniqueName('stop-missing-topic'),
        }),
        { uid: 'source' },
      )
      .sinkTo(collectSink([]));
    const done = env.execute().then(
      (result) => result.state,
      (error: unknown) => error,
    );
    // Long enough for kafkajs to be inside its metadata retries for the missing topic.
    await new Promise((r) => setTimeout(r, 4_000));
    const stopAsked = Date.now();
    await env.stop().catch(() => undefined);
    const ended = await Promise.race([done, new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
    const stoppedAt = lines.find(
      (l) =>
        l.msg.startsWith(`job ${jobName} stopped`) ||
        l.msg.startsWith(`job ${jobName} cancelled`) ||
        l.msg.startsWith('job stopped') ||
        l.msg.startsWith('job cancelled'),
    )?.atMs;
    // Anything the source or kafkajs retries shows up in the log after a few more seconds.
    await new Promise((r) => setTimeout(r, 6_000));
    const after = stoppedAt === undefined ? [] : lines.filter((l) => l.atMs > stoppedAt).map((l) => l.msg);
    expect(ended, lines.map((l) => l.msg).join('\n')).toBe('stopped');
    expect(stoppedAt).toBeDefined();
    expect((stoppedAt as number) - stopAsked).toBeLessThan(10_000);
    expect(after).toEqual([]);
  }, 60_000);

  it('at parallelism 2: SIGTERM ends the process with 0, stopped, nothing retried after', async () => {
    const spec: JobSpec = {
      job: 'projection',
      source: {
        kind: 'kafka',
        topic: uniqueName('no-such-topic'),
        groupId: uniqueName('stop-missing-topic'),
        bounded: false,
      },
    };
    const job = startParallelJob(spec, folders.make(), 2, { CDCFLOW_LOG_FORMAT: 'json' });
    await job.waitFor(/waiting for topic\(s\)/, 60_000);
    process.kill(job.pid, 'SIGTERM');
    const exit = await job.waitForExit(20_000);
    expect(exit, job.tail(30)).toEqual({ code: 0, signal: null });
    const stoppedAt = job.lines.findIndex((l) => /job stopped/.test(l));
    expect(stoppedAt, job.tail(30)).toBeGreaterThanOrEqual(0);
    expect(
      job.lines.slice(stoppedAt + 1).filter((l) => /retry|waiting for topic|Response Metadata/i.test(l)),
      job.tail(30),
    ).toEqual([]);
  }, 90_000);
});
