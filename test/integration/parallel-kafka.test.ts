/**
 * Parallel execution on the real broker: a 6-partition Debezium topic read by 2 subtasks (each
 * its own partitions p % 2 == i), bounded at today's end offsets. The projection and the revenue
 * windows (keyed by status: every record crosses the keyed exchange to its key's subtask) must
 * equal their oracles, as at parallelism 1 (test/integration/revenue-windows.test.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { projectionOracle, revenueWindowOracle } from '../../scripts/workload/oracle.ts';
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
    await produce(kafka, topic, records.map((r) => ({ key: r.key, value: r.value, partition: r.partition })));
    const source = (job: string) => ({ kind: 'kafka' as const, topic, groupId: uniqueName(`parallel-${job}`), bounded: true });

    const projection = folders.make();
    await runToEnd({ job: 'projection', source: source('projection') }, projection, 2, 180_000, env);
    const oracle = projectionOracle(records);
    expect(committedTable(projection)).toEqual(oracle);
    const stored = await storedProjection(projection);
    expect(Object.fromEntries(stored.sourcePositions)).toEqual(Object.fromEntries([0, 1, 2, 3, 4, 5].map((p) => [`${topic}:${p}`, String(records.filter((r) => r.partition === p).length)])));

    const revenue = folders.make();
    await runToEnd({ job: 'revenue', source: source('revenue') }, revenue, 2, 180_000, env);
    const expected = revenueWindowOracle(records, { partitions: WORKLOAD.partitions });
    const result = windowResults(revenue);
    expect(result.windows).toEqual(expected.windows);
    expect(result.late).toEqual(expected.late.map((l) => l.lsn).sort((a, b) => a - b));
    expect(expected.late.length).toBeGreaterThan(20);
  });
});
