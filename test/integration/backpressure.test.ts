/**
 * Backpressure against the real broker: a producer writes 20k orders events (~25 MB) at full speed
 * while the job's sink sleeps on every batch, so Kafka holds far more than the job can take. The
 * source's buffer must stay within its bound (`maxBufferedBytes` plus one fetch) the whole time,
 * reach that bound (so backpressure, not luck, kept it there), and every event must arrive exactly
 * once, in order per partition.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { debeziumSource, type SinkDefinition } from '../../runtime/index.ts';
import type { OperatorMetrics } from '../../operators/operator.ts';
import type { FetchedBatch, Fetcher } from '../../operators/sources/kafka/fetcher.ts';
import { KafkajsFetcher } from '../../operators/sources/kafka/kafkajs-fetcher.ts';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { createTopic, produce, testJob, testKafka, type TestJob } from '../support/source-jobs.ts';

const PARTITIONS = 3;
const WORKLOAD = { seed: 3, keys: 2_000, events: 20_000, partitions: PARTITIONS };
const MAX_BUFFERED_BYTES = 2 * 1024 * 1024;
const MAX_BYTES_PER_PARTITION = 1024 * 1024;
/** The job's pace: the sink sleeps this long per record of a batch, ~10 s for the whole topic. */
const SINK_MS_PER_RECORD = 0.5;

interface Seen {
  readonly partition: number;
  readonly offset: number;
}

/** The real kafkajs fetcher, noting the largest batch it hands over: "one fetch" in the bound. */
function measuringFetcher(inner: Fetcher, largest: { bytes: number }): Fetcher {
  return {
    start: (deliver, startAt) =>
      inner.start((batch: FetchedBatch) => {
        largest.bytes = Math.max(largest.bytes, batch.bytes);
        return deliver(batch);
      }, startAt),
    commit: (positions) => inner.commit(positions),
    endOffsets: () => inner.endOffsets(),
    assignment: () => inner.assignment(),
    stop: () => inner.stop(),
  };
}

describe('Debezium source: backpressure', () => {
  const jobs: TestJob[] = [];
  afterAll(() => jobs.forEach((j) => j.cleanup()));

  it('keeps its buffer within maxBufferedBytes plus one fetch under a much faster producer and drops nothing', async () => {
    const kafka = testKafka(uniqueName('backpressure'));
    const topic = uniqueName('backpressure');
    await createTopic(kafka, topic, PARTITIONS);
    const records = [...generateWorkload(WORKLOAD)];
    const expected = records.filter((r) => r.value !== null).length;
    const totalBytes = records.reduce((sum, r) => sum + r.key.length + (r.value?.length ?? 0), 0);
    expect(totalBytes).toBeGreaterThan(10 * MAX_BUFFERED_BYTES);

    const job = testJob(uniqueName('backpressure-job'));
    jobs.push(job);
    const { env } = job;

    // Test hook: every value the source gives its buffered-bytes gauge.
    const gauge = { peak: 0, samples: 0 };
    const forOperator = env.metrics.forOperator.bind(env.metrics);
    env.metrics.forOperator = (uid: string): OperatorMetrics => {
      const metrics = forOperator(uid);
      return {
        count: metrics.count,
        observe: metrics.observe,
        gauge: (name, value, labels) => {
          if (name === 'cdcflow_source_buffered_bytes') {
            gauge.peak = Math.max(gauge.peak, value);
            gauge.samples += 1;
          }
          metrics.gauge(name, value, labels);
        },
      };
    };

    const largestFetch = { bytes: 0 };
    const groupId = uniqueName('backpressure-group');
    const fetcher = measuringFetcher(
      new KafkajsFetcher({
        brokers: testEndpoints().kafkaBrokers.split(','),
        topics: [topic],
        groupId,
        clientId: uniqueName('backpressure-client'),
        maxBytesPerPartition: MAX_BYTES_PER_PARTITION,
      }),
      largestFetch,
    );

    const seen: Seen[] = [];
    let producerDoneAt = 0;
    let sinkBusyMs = 0;
    const slowSink: SinkDefinition<Seen> = {
      name: 'slow',
      createOperator: () => ({
        async processBatch(batch) {
          for (const record of batch) seen.push(record.value);
          if (seen.length >= expected) void env.stop();
          const ms = Math.max(2, batch.length * SINK_MS_PER_RECORD);
          sinkBusyMs += ms;
          await new Promise((resolve) => setTimeout(resolve, ms));
        },
      }),
    };
    env
      .fromSource(debeziumSource({ topics: [topic], groupId, fetcher, maxBufferedBytes: MAX_BUFFERED_BYTES }), {
        uid: 'orders-source',
      })
      .map((event) => ({ partition: event.origin.partition, offset: Number(event.origin.offset) }))
      .sinkTo(slowSink);

    const startedAt = Date.now();
    // Should an event go missing the job would wait forever: stop it so the assertions say what is missing.
    const watchdog = setTimeout(() => void env.stop(), 120_000);
    const running = env.execute().finally(() => clearTimeout(watchdog));
    const producing = produce(
      kafka,
      topic,
      records.map((r) => ({ key: r.key, value: r.value, partition: r.partition })),
    ).then(() => {
      producerDoneAt = Date.now();
    });
    const [result] = await Promise.all([running, producing]);
    const jobDoneAt = Date.now();
    expect(result.restarts, job.log.join('\n')).toBe(0);

    // The producer really was much faster: it finished while most of the topic was still unread.
    expect(producerDoneAt - startedAt).toBeLessThan((jobDoneAt - startedAt) / 2);
    expect(sinkBusyMs).toBeGreaterThan(5_000);

    // The buffer reached its bound (puts had to wait) and never went past it by more than one fetch.
    expect(largestFetch.bytes).toBeGreaterThan(0);
    expect(largestFetch.bytes).toBeLessThanOrEqual(MAX_BYTES_PER_PARTITION);
    expect(gauge.samples).toBeGreaterThan(0);
    expect(gauge.peak).toBeGreaterThanOrEqual(MAX_BUFFERED_BYTES);
    expect(gauge.peak).toBeLessThanOrEqual(MAX_BUFFERED_BYTES + largestFetch.bytes);

    // Nothing dropped or repeated: every change event arrived once, in offset order per partition.
    expect(seen).toHaveLength(expected);
    const got = Array.from({ length: PARTITIONS }, () => [] as number[]);
    for (const s of seen) got[s.partition]?.push(s.offset);
    const wanted = Array.from({ length: PARTITIONS }, () => [] as number[]);
    const next = new Array<number>(PARTITIONS).fill(0);
    for (const r of records) {
      const offset = next[r.partition] ?? 0;
      next[r.partition] = offset + 1;
      if (r.value !== null) wanted[r.partition]?.push(offset);
    }
    for (let p = 0; p < PARTITIONS; p++) expect(got[p], `partition ${p}`).toEqual(wanted[p]);
  });
});
