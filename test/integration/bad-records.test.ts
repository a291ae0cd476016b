/**
 * Issue 10, the proof: a topic mixing the reference workload with the malformed-input corpus
 * (≥ 25 classes, scripts/workload/bad-records.ts) runs through the projection into Postgres
 * (two-phase) and through the revenue windows. Neither job crashes or stalls (both finish a
 * bounded read without a restart); every bad record is dead-lettered exactly once, by the stage
 * and for the reason its class names, in each job; no good record is; the Postgres table equals
 * the projection oracle of the good records and the windows equal the revenue oracle.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ALLOWED_LATENESS_MS,
  LATE_ORDERS,
  OUT_OF_ORDERNESS_MS,
  REVENUE_WINDOWS,
  type Order,
  type OrderEvent,
  type RevenueRow,
} from '../../jobs/revenue-windows.ts';
import { DLQ_HEADERS } from '../../operators/sources/kafka/dead-letter.ts';
import {
  StreamEnvironment,
  WatermarkStrategy,
  collectSink,
  debeziumSource,
  decimalSum,
  postgresSink,
} from '../../runtime/index.ts';
import {
  BAD_CLASSES,
  CORPUS_SOURCE_CHECKS,
  STAGES,
  checkOrderForProjection,
  checkOrderForRevenue,
  revenueAmount,
  type BadRecord,
} from '../../scripts/workload/bad-records.ts';
import { projectionOracle, revenueWindowOracle } from '../../scripts/workload/oracle.ts';
import { mixedWorkload, produceMixed, readAll, type PlacedBad } from '../../scripts/workload/bad-records-mix.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { dropOrdersTable, readOrdersTable, tableDifferences } from '../support/orders-check.ts';
import { metricTotal, testKafka } from '../support/source-jobs.ts';
import { counterValue } from '../unit/operators/window/harness.ts';

// Two partitions of ~2.5 MB of snapshot each: the first fetch round is all snapshot, as the revenue oracle needs (revenue-oracle.ts).
const WORKLOAD = { seed: 101, keys: 6_000, events: 12_000, partitions: 2 };
const COPIES = 2;

const DDL = (
  table: string,
) => `CREATE TABLE ${table} (id bigint PRIMARY KEY, customer_id bigint, status text, amount numeric(12,2), currency char(3),
  shipping_address text, notes text, created_at timestamptz, updated_at timestamptz)`;

describe('bad records never stop a job (issue 10)', () => {
  const url = testEndpoints().databaseUrl;
  const cleanups: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  function environment(jobName: string, dlq: string): StreamEnvironment {
    const dir = mkdtempSync(join(tmpdir(), `cdcflow-${jobName}-`));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return StreamEnvironment.create({
      jobName,
      restore: 'none',
      checkpoints: { dir: join(dir, 'checkpoints'), intervalMs: 500 },
      state: { backend: 'rocksdb', dir: join(dir, 'state') },
      restart: { maxAttempts: 0 },
      deadLetters: { topic: dlq },
      log: () => undefined,
    });
  }

  it('the corpus has at least 25 classes across decode, user code, state and sink', () => {
    expect(BAD_CLASSES.length).toBeGreaterThanOrEqual(25);
    const stages = new Set(BAD_CLASSES.map((c) => (c.projection.stage === 'decode' ? 'decode' : c.projection.kind)));
    expect([...stages].sort()).toEqual(['decode', 'sink-refused', 'unstorable', 'user-code']);
  });

  it('projection into Postgres (two-phase) and revenue windows: no crash, every bad record dead-lettered once with its stage and reason, targets equal the oracles', async () => {
    const { entries, good, bad } = mixedWorkload(WORKLOAD, COPIES);
    const topic = uniqueName('bad-records');
    const kafka = testKafka(topic);
    const topics = [topic, `${topic}.dlq-projection`, `${topic}.dlq-revenue`];
    cleanups.push(async () => {
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics }).catch(() => undefined);
      await admin.disconnect();
    });
    await produceMixed(kafka, topic, WORKLOAD.partitions, entries);

    // Projection: source → check-order → keyBy id → upsert → Postgres, two-phase.
    const table = uniqueName('orders_bad').replace(/-/g, '_');
    const projectionJob = uniqueName('bad-projection');
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query(DDL(table));
    await db.end();
    cleanups.push(() => dropOrdersTable(url, table, projectionJob));
    const projection = environment(projectionJob, topics[1] as string);
    projection
      .fromSource(
        debeziumSource<Order>({
          topics: [topic],
          groupId: uniqueName('bad-projection'),
          bounded: 'latest',
          deadLetterTopic: topics[1] as string,
          checks: CORPUS_SOURCE_CHECKS,
        }),
        { uid: 'orders-source' },
      )
      .map(checkOrderForProjection)
      .uid(STAGES.checkOrder)
      .keyBy((e) => e.key?.['id'] as number)
      .upsert()
      .uid(STAGES.upsert)
      .sinkTo(postgresSink<number, Order>({ table, primaryKey: ['id'], connectionString: url }))
      .uid(STAGES.sink);

    // Revenue windows: source → check-order (strict) → c/u/r → keyBy status → 1-minute windows.
    const revenue = environment(uniqueName('bad-revenue'), topics[2] as string);
    const rows: RevenueRow[] = [];
    const late: OrderEvent[] = [];
    const windows = revenue
      .fromSource(
        debeziumSource<Order>({
          topics: [topic],
          groupId: uniqueName('bad-revenue'),
          bounded: 'latest',
          deadLetterTopic: topics[2] as string,
          checks: CORPUS_SOURCE_CHECKS,
        }),
        {
          uid: 'orders-source',
          watermarks: WatermarkStrategy.boundedOutOfOrderness<OrderEvent>(OUT_OF_ORDERNESS_MS).withTimestamps(
            (e) => e.source.tsMs,
          ),
        },
      )
      .map(checkOrderForRevenue)
      .uid(STAGES.checkOrder)
      .filter((e) => (e.op === 'c' || e.op === 'u' || e.op === 'r') && e.after !== null)
      .keyBy((e) => (e.after as Order).status)
      .window(REVENUE_WINDOWS)
      .allowedLateness(ALLOWED_LATENESS_MS)
      .sideOutputLateData(LATE_ORDERS)
      .aggregate(decimalSum(revenueAmount))
      .uid(STAGES.revenueWindows);
    windows
      .map((r): RevenueRow => ({
        windowStart: r.window.start,
        windowEnd: r.window.end,
        status: r.key,
        ...r.result,
        firing: r.firing,
        updateCount: r.updateCount,
      }))
      .sinkTo(collectSink(rows, { transactional: true }));
    windows.getSideOutput(LATE_ORDERS).sinkTo(collectSink(late, { transactional: true }));

    const [projected, windowed] = await Promise.all([projection.execute(), revenue.execute()]);
    expect(projected.restarts).toBe(0);
    expect(windowed.restarts).toBe(0);

    // Every bad record exactly once per job, with the stage and reason of its class; nothing else.
    for (const [pipeline, dlq] of [
      ['projection', topics[1]],
      ['revenue', topics[2]],
    ] as const) {
      const letters = await readAll(kafka, dlq as string);
      const header = (m: (typeof letters)[number]['message'], name: string) => m.headers?.[name]?.toString();
      const found = new Map<string, string[]>();
      for (const { message } of letters) {
        expect(header(message, DLQ_HEADERS.topic), 'letters name their source topic').toBe(topic);
        const at = `${header(message, DLQ_HEADERS.partition)}@${header(message, DLQ_HEADERS.offset)}`;
        found.set(at, [
          ...(found.get(at) ?? []),
          `${header(message, DLQ_HEADERS.stage)}/${header(message, DLQ_HEADERS.errorKind)}`,
        ]);
        expect(header(message, DLQ_HEADERS.errorClass)?.length ?? 0).toBeGreaterThan(0);
        expect(Number(header(message, DLQ_HEADERS.deadLetteredAtMs))).toBeGreaterThan(0);
      }
      const expected = new Map(bad.map((b: PlacedBad) => [`${b.partition}@${b.offset}`, b]));
      const wrong: string[] = [];
      for (const [at, b] of expected) {
        const want = `${(b[pipeline] as BadRecord['projection']).stage}/${(b[pipeline] as BadRecord['projection']).kind}`;
        const got = found.get(at) ?? [];
        if (got.length !== 1 || got[0] !== want)
          wrong.push(`${pipeline} ${b.className} at ${at}: want [${want}], got [${got.join(', ')}]`);
      }
      for (const at of found.keys())
        if (!expected.has(at))
          wrong.push(`${pipeline}: a good record at ${at} was dead-lettered as ${found.get(at)?.join(', ')}`);
      expect(wrong).toEqual([]);
      expect(letters).toHaveLength(bad.length);
    }
    expect(await metricTotal(projected.metrics.registry, 'cdcflow_dead_letters_total')).toBe(bad.length);
    expect(await metricTotal(windowed.metrics.registry, 'cdcflow_dead_letters_total')).toBe(bad.length);
    // Alerts can be set on reasons that never happened: their series exist at zero.
    expect(
      (await projected.metrics.registry.getSingleMetric('cdcflow_dead_letters_total')?.get())?.values.some(
        (v) => v.labels['reason'] === 'unknown-schema' && v.value === 0,
      ),
    ).toBe(true);
    expect(
      await counterValue(projected.metrics, 'cdcflow_dead_letters_total', {
        stage: STAGES.sink,
        reason: 'sink-refused',
      }),
    ).toBe(bad.filter((b) => b.projection.stage === STAGES.sink).length);

    // The targets hold exactly what the good records alone make.
    const { rows: tableRows, prepared } = await readOrdersTable(url, table, projectionJob);
    expect(prepared).toEqual([]);
    expect(tableDifferences(tableRows, projectionOracle(good))).toEqual({ lost: [], extra: [], stale: [] });
    const oracle = revenueWindowOracle(good, { partitions: WORKLOAD.partitions });
    const final = new Map<string, RevenueRow>();
    for (const row of rows) {
      const id = `${row.windowStart}|${row.status}`;
      if ((final.get(id)?.updateCount ?? -1) < row.updateCount) final.set(id, row);
    }
    const results = [...final.values()]
      .map(({ windowStart, windowEnd, status, sum, count }) => ({ windowStart, windowEnd, status, sum, count }))
      .sort((a, b) => a.windowStart - b.windowStart || a.status.localeCompare(b.status));
    expect(results).toEqual(oracle.windows);
    const lsns = (list: readonly { lsn: number }[]) => list.map((l) => l.lsn).sort((a, b) => a - b);
    expect(lsns(late.map((e) => e.source))).toEqual(lsns(oracle.late));
  }, 150_000);
});
