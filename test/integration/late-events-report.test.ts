/**
 * The late events report (jobs/late-events-report.ts) on the real Kafka and Postgres: the
 * workload with events out of order beyond the watermark bound (late updates within the allowed
 * lateness) and 3 % late events, on a 6-partition topic, read to its end. The late events on the
 * Kafka topic (read_committed), the late counts per window and the window results in Postgres
 * must match revenueWindowOracle computed from the same input.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { lateEventsReportJob, reportTablesDdl, type LateEventsReportOptions } from '../../jobs/late-events-report.ts';
import type { Order } from '../../jobs/revenue-windows.ts';
import { debeziumSource, type ChangeEvent } from '../../runtime/index.ts';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { revenueWindowOracle } from '../../scripts/workload/oracle.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import {
  createTopic,
  metricTotal,
  produce,
  readTopic,
  testJob,
  testKafka,
  type TestJob,
} from '../support/source-jobs.ts';

// Jitter 8 s > the job's 5 s bound: some events arrive after their window fired (late updates),
// but never beyond the 30 s lateness. Late events are 300 s behind: late under any interleaving
// the consumer produces (revenue-oracle.ts). The snapshot (12 000 `r` events, no late ones) covers
// the first round of fetches, before every partition delivered and the watermark is still −∞.
const WORKLOAD = { seed: 31, keys: 12_000, events: 30_000, partitions: 6, outOfOrdernessMs: 8_000, lateFraction: 0.03 };

const table = (prefix: string) => uniqueName(prefix).replace(/-/g, '_');

describe('late events report on Kafka and Postgres', () => {
  const jobs: TestJob[] = [];
  const db = new pg.Client({ connectionString: testEndpoints().databaseUrl });
  const dropped: string[] = [];
  const jobName = uniqueName('late-report');
  afterAll(async () => {
    for (const t of dropped) await db.query(`DROP TABLE IF EXISTS ${t}`);
    await db.query("DELETE FROM cdcflow_sink_commits WHERE sink LIKE $1 || '%'", [jobName]).catch(() => undefined);
    await db.end();
    jobs.forEach((job) => job.cleanup());
  });

  it('late events in Kafka, late counts per window and window results in Postgres agree with the oracle', async () => {
    process.env['DATABASE_URL'] ??= testEndpoints().databaseUrl;
    const records = [...generateWorkload(WORKLOAD)];
    const topic = uniqueName('late-report-in');
    const kafka = testKafka(topic);
    await createTopic(kafka, topic, WORKLOAD.partitions);
    await produce(
      kafka,
      topic,
      records.map((r) => ({ key: r.key, value: r.value, partition: r.partition })),
    );

    const options: LateEventsReportOptions = {
      brokers: testEndpoints().kafkaBrokers.split(','),
      lateTopic: uniqueName('late-report-out'),
      windowsTable: table('revenue_windows'),
      lateCountsTable: table('late_counts'),
    };
    await createTopic(kafka, options.lateTopic, 3);
    await db.connect();
    dropped.push(options.windowsTable, options.lateCountsTable);
    for (const ddl of reportTablesDdl(options)) await db.query(ddl);

    const job = testJob(jobName);
    jobs.push(job);
    lateEventsReportJob(
      job.env,
      debeziumSource<Order>({ topics: [topic], groupId: uniqueName('late-report'), bounded: 'latest' }),
      options,
    );
    const result = await job.env.execute();
    expect(result.restarts).toBe(0);

    const oracle = revenueWindowOracle(records, { partitions: WORKLOAD.partitions });
    expect(oracle.late.length).toBeGreaterThan(300);
    expect(oracle.lateCounts.length).toBeGreaterThan(10);
    expect(await metricTotal(result.metrics.registry, 'cdcflow_late_events_total')).toBe(oracle.late.length);

    const late = await readTopic(kafka, options.lateTopic, oracle.late.length);
    const events = late.map((m) => JSON.parse(m.message.value?.toString() ?? 'null') as ChangeEvent<Order>);
    const lsns = (list: readonly { lsn: number }[]) => list.map((l) => l.lsn).sort((a, b) => a - b);
    expect(lsns(events.map((e) => e.source))).toEqual(lsns(oracle.late));
    expect(
      late.every(
        (m) =>
          m.message.key?.toString() ===
          JSON.stringify({ id: (JSON.parse(m.message.value?.toString() ?? '{}') as ChangeEvent<Order>).key?.['id'] }),
      ),
    ).toBe(true);

    const ms = (column: string) => `(extract(epoch from ${column}) * 1000)::bigint::text AS "${column}"`;
    const counts = await db.query<{ window_start: string; window_end: string; status: string; late_count: string }>(
      `SELECT ${ms('window_start')}, ${ms('window_end')}, status, late_count::text FROM ${options.lateCountsTable} ORDER BY window_start, status COLLATE "C"`,
    );
    expect(
      counts.rows.map((r) => ({
        windowStart: Number(r.window_start),
        windowEnd: Number(r.window_end),
        status: r.status,
        lateCount: Number(r.late_count),
      })),
    ).toEqual(oracle.lateCounts);

    const windows = await db.query<{
      window_start: string;
      window_end: string;
      status: string;
      sum: string;
      count: string;
    }>(
      `SELECT ${ms('window_start')}, ${ms('window_end')}, status, sum::text, count::text FROM ${options.windowsTable} ORDER BY window_start, status COLLATE "C"`,
    );
    expect(
      windows.rows.map((r) => ({
        windowStart: Number(r.window_start),
        windowEnd: Number(r.window_end),
        status: r.status,
        sum: r.sum,
        count: Number(r.count),
      })),
    ).toEqual(oracle.windows);
  });
});
