/**
 * Parallel execution on the real broker: a 6-partition Debezium topic read by 2 subtasks (each
 * its own partitions p % 2 == i), bounded at today's end offsets. The projection and the revenue
 * windows (keyed by status: every record crosses the keyed exchange to its key's subtask) must
 * equal their oracles.
 *
 * The revenue oracle's one consumption order does not exist at parallelism 2: each window subtask
 * takes the minimum of two channels' watermarks (one per source subtask, each its own consumer
 * group that joins and fetches on its own schedule), so which late-by-construction records come
 * late depends on how far the other subtask had read — a subtask that joined its group later
 * holds event time back and the other's late records land in early windows. The same topic is
 * therefore read at parallelism 1 against the exact oracle (the engine's rule), and at parallelism
 * 2 against what holds under every timing (revenue-oracle-bounds.ts): only records late even by
 * their own partition's watermark may be late, and the windows are exactly the sums of the rest.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { projectionOracle, revenueWindowOracle } from '../../scripts/workload/oracle.ts';
import { possiblyLate, revenueWindowsDecided } from '../../scripts/workload/revenue-oracle-bounds.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { committedTable, RunFolders, runToEnd, storedProjection, windowResults } from '../support/parallel-runs.ts';
import { createTopic, produce, testKafka } from '../support/source-jobs.ts';

// As in revenue-windows.test.ts: the snapshot covers the first round of fetches.
const WORKLOAD = { seed: 23, keys: 12_000, events: 24_000, partitions: 6 };
const folders = new RunFolders();
const topic = uniqueName('parallel-orders');
const kafka = testKafka(topic);

afterAll(async () => {
  folders.cleanup();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
});

describe('parallel execution on Kafka', () => {
  const records = [...generateWorkload(WORKLOAD)];
  const env = { KAFKA_BROKERS: testEndpoints().kafkaBrokers };

  it('at parallelism 2, the projection and the revenue windows equal their oracles', async () => {
    await createTopic(kafka, topic, WORKLOAD.partitions);
    await produce(
      kafka,
      topic,
      records.map((r) => ({ key: r.key, value: r.value, partition: r.partition })),
    );
    const source = (job: string) => ({
      kind: 'kafka' as const,
      topic,
      groupId: uniqueName(`parallel-${job}`),
      bounded: true,
    });

    const projection = folders.make();
    const projectionSource = source('projection');
    await runToEnd({ job: 'projection', source: projectionSource }, projection, 2, 180_000, env);
    const oracle = projectionOracle(records);
    expect(committedTable(projection)).toEqual(oracle);
    const stored = await storedProjection(projection);
    expect(Object.fromEntries(stored.sourcePositions)).toEqual(
      Object.fromEntries(
        [0, 1, 2, 3, 4, 5].map((p) => [`${topic}:${p}`, String(records.filter((r) => r.partition === p).length)]),
      ),
    );
    // Lag monitoring: the job's own group (not only `<group>.subtask-i-of-2`) holds every partition's final offset.
    const admin = kafka.admin();
    await admin.connect();
    const [committed] = await admin
      .fetchOffsets({ groupId: projectionSource.groupId, topics: [topic] })
      .finally(() => admin.disconnect());
    expect(Object.fromEntries((committed?.partitions ?? []).map((p) => [`${topic}:${p.partition}`, p.offset]))).toEqual(
      Object.fromEntries(stored.sourcePositions),
    );

    // Parallelism 1 on the same topic: exactly the oracle, late events included.
    const options = { partitions: WORKLOAD.partitions };
    const single = folders.make();
    await runToEnd({ job: 'revenue', source: source('revenue-1') }, single, 1, 180_000, env);
    const expected = revenueWindowOracle(records, options);
    const atOne = windowResults(single);
    expect(atOne.windows).toEqual(expected.windows);
    expect(atOne.late).toEqual(expected.late.map((l) => l.lsn).sort((a, b) => a - b));
    expect(expected.late.length).toBeGreaterThan(20);

    // Parallelism 2: late only where some timing allows it, and the windows sum exactly the rest.
    const revenue = folders.make();
    await runToEnd({ job: 'revenue', source: source('revenue') }, revenue, 2, 180_000, env);
    const result = windowResults(revenue);
    const mayBeLate = possiblyLate(records, options);
    expect(result.late.filter((lsn) => !mayBeLate.has(lsn))).toEqual([]);
    expect(new Set(result.late).size).toBe(result.late.length);
    expect(result.windows).toEqual(revenueWindowsDecided(records, result.late, options).windows);
    // Every record the oracle finds late is late by its own partition too (the bound is not vacuous).
    expect(expected.late.every((l) => mayBeLate.has(l.lsn))).toBe(true);
  });
});
