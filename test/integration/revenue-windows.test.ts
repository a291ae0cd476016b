/**
 * The reference revenue-windows job (jobs/revenue-windows.ts) on the real broker: the workload on
 * a 6-partition topic, read to its end by the Debezium source; the final result per window and
 * status, and the late side output, must match revenueWindowOracle.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { revenueWindowsJob, type Order, type OrderEvent, type RevenueRow } from '../../jobs/revenue-windows.ts';
import { collectSink, debeziumSource } from '../../runtime/index.ts';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { revenueWindowOracle } from '../../scripts/workload/oracle.ts';
import { uniqueName } from '../support/endpoints.ts';
import { createTopic, metricTotal, produce, testJob, testKafka, type TestJob } from '../support/source-jobs.ts';

// The snapshot (12 000 `r` events of ~850 bytes: ~1.7 MB per partition) covers the first round of
// fetches (1 MiB per partition), as revenue-oracle.ts requires for generation order to stand in
// for the consumption order: a batch is judged by the watermark before it, and the first batch of
// a partition is judged before the other partitions have delivered.
const WORKLOAD = { seed: 23, keys: 12_000, events: 24_000, partitions: 6 };

describe('revenue windows on Kafka', () => {
  const jobs: TestJob[] = [];
  afterAll(() => jobs.forEach((job) => job.cleanup()));

  it('final window sums and late events agree with the oracle', async () => {
    const records = [...generateWorkload(WORKLOAD)];
    const topic = uniqueName('revenue-windows');
    const kafka = testKafka(topic);
    await createTopic(kafka, topic, WORKLOAD.partitions);
    await produce(
      kafka,
      topic,
      records.map((r) => ({ key: r.key, value: r.value, partition: r.partition })),
    );

    const job = testJob('revenue-windows');
    jobs.push(job);
    const rows: RevenueRow[] = [];
    const late: OrderEvent[] = [];
    const source = debeziumSource<Order>({
      topics: [topic],
      groupId: uniqueName('revenue-windows'),
      bounded: 'latest',
    });
    revenueWindowsJob(job.env, source, {
      windows: collectSink(rows, { transactional: true }),
      late: collectSink(late, { transactional: true }),
    });
    const result = await job.env.execute();
    expect(result.restarts).toBe(0);

    const oracle = revenueWindowOracle(records, { partitions: WORKLOAD.partitions });
    const final = new Map<string, RevenueRow>();
    for (const row of rows) {
      const id = `${row.windowStart}|${row.status}`;
      if ((final.get(id)?.updateCount ?? -1) < row.updateCount) final.set(id, row);
    }
    const windows = [...final.values()]
      .map(({ windowStart, windowEnd, status, sum, count }) => ({ windowStart, windowEnd, status, sum, count }))
      .sort((a, b) => a.windowStart - b.windowStart || a.status.localeCompare(b.status));
    expect(windows).toEqual(oracle.windows);
    const lsns = (list: readonly { lsn: number }[]) => list.map((l) => l.lsn).sort((a, b) => a - b);
    expect(lsns(late.map((e) => e.source))).toEqual(lsns(oracle.late));
    expect(oracle.late.length).toBeGreaterThan(20);
    expect(await metricTotal(result.metrics.registry, 'cdcflow_late_events_total')).toBe(oracle.late.length);
  });
});
