/**
 * The exactly-once sinks at parallelism 2, under SIGKILL, then rescaled. The projection job
 * (jobs/orders-to-<sink>.ts: Debezium orders → keyBy id → upsert → sink, 1 s checkpoints) runs as
 * two subtasks (CDCFLOW_PARALLELISM=2: worker threads, partitions p % 2 == i, the upsert behind
 * the keyed exchange, one sink instance per subtask with its own transaction names) on a
 * 4-partition topic and is SIGKILLed again and again through the loop of the single-subtask sink
 * chaos tests (test/support/sink-chaos.ts: random moments, 0–150 ms after a pre-commit, during
 * restore). Then it is rescaled twice:
 *  - one start at parallelism 3 (scale-up: key groups move between subtasks while the old owners'
 *    transactions may be pending) is SIGKILLed as soon as each subtask pre-committed — usually
 *    before that checkpoint completed, so subtask 2's prepared transaction / open Kafka
 *    transaction / staged batch is in no checkpoint;
 *  - the last bounded run restores at parallelism 1 (scale-down): subtask 0 must recover the
 *    transactions subtask 1 recorded, and roll back or fence whatever subtasks 1 and 2 left.
 * Then each sink is compared with its oracle exactly as in test/chaos/<sink>-sink-sigkill.test.ts:
 *  - Postgres: the table equals the projection oracle, no prepared transaction of the job left;
 *  - Kafka: the committed changelog equals the changelog oracle (nothing lost, duplicated,
 *    unexpected or out of order), the compacted view equals the projection, no open transaction;
 *    after every kill nothing is committed that the latest completed checkpoint does not contain;
 *  - Redis: the keys equal the projection oracle, no staged batch left;
 *  - Elasticsearch: the index equals the projection oracle, each version the id's last LSN.
 * Redis and Elasticsearch run only in `npm run chaos` or with CDCFLOW_CHAOS_PARALLEL_SINKS=all.
 *
 * CDCFLOW_CHAOS_PARALLEL_KILLS (default 4; else CDCFLOW_CHAOS_KILLS) and CDCFLOW_CHAOS_SEED replay
 * a run; CDCFLOW_CHAOS_VERBOSE=1 echoes the jobs' output.
 */
import { Client } from '@elastic/elasticsearch';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { changelogOracle, projectionOracle } from '../../scripts/workload/oracle.ts';
import type { WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import {
  createChangelogTopic,
  decodeChange,
  expectExactChangelog,
  judgeChangelog,
  workloadByPartition,
} from '../support/changelog-check.ts';
import { countDeadLetters, indexDifferences, readIndex } from '../support/elasticsearch-check.ts';
import { completedCheckpointPositions } from '../support/checkpoint-state.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { readTransactionalLog } from '../support/kafka-read.ts';
import { dropOrdersTable, readOrdersTable, tableDifferences } from '../support/orders-check.ts';
import { readRedisView, redisDifferences, scanKeys } from '../support/redis-check.ts';
import { ChaosWorkspace, chaosSettings, countLines, runSinkChaos } from '../support/sink-chaos.ts';

const settings = chaosSettings(true);
const PARALLELISM = 2;
const ABANDONED = 3;
const FINAL = 1;
const path = `${settings.kills} kills at N = ${PARALLELISM}, a start at N = ${ABANDONED} killed at its first pre-commits, restored at N = ${FINAL}`;
/** A smaller workload than the single-subtask tests: the file must stay within CI's budget. */
const workload = (seed: number): WorkloadOptions => ({
  keys: 2_000,
  events: 16_000,
  partitions: 4,
  duplicateFraction: 0.02,
  seed,
});
/** Redis and Elasticsearch only in the heavier runs (`npm run chaos`, or CDCFLOW_CHAOS_PARALLEL_SINKS=all): CI's budget. */
const allSinks =
  process.env['CDCFLOW_CHAOS_KILLS'] !== undefined || process.env['CDCFLOW_CHAOS_PARALLEL_SINKS'] === 'all';
const { databaseUrl, redisUrl, elasticsearchUrl } = testEndpoints();
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

/** A workspace whose cleanup runs after the file; `pass()` marks it passed (else its folders and outputs stay). */
function workspace(
  label: string,
  extra: (passed: boolean) => Promise<void> = async () => undefined,
): { ws: ChaosWorkspace; pass(): void } {
  const ws = new ChaosWorkspace(label);
  let passed = false;
  cleanups.push(async () => {
    await extra(passed);
    await ws.cleanup(passed);
  });
  return { ws, pass: () => (passed = true) };
}

describe(`exactly-once sinks at parallelism ${PARALLELISM} under SIGKILL, restored at another parallelism`, () => {
  it(`Postgres (two-phase): ${path}, equals the projection oracle`, async () => {
    const table = uniqueName('chaos_par_orders').replace(/-/g, '_');
    const { ws, pass } = workspace('par-postgres', async (passed) =>
      passed ? dropOrdersTable(databaseUrl, table, ws.jobName) : ws.say(`table ${table} kept`),
    );
    const WORKLOAD = workload(20_251_201);
    ws.say(
      `seed ${settings.seed} (CDCFLOW_CHAOS_SEED), ${path}, topic ${ws.topic}, table ${table}, work dir ${ws.workDir}`,
    );
    const run = await runSinkChaos(ws, {
      file: 'jobs/orders-to-postgres.ts',
      env: { DATABASE_URL: databaseUrl, CDCFLOW_PG_TABLE: table },
      workload: WORKLOAD,
      settings,
      prepared: /checkpoint \d+ prepared: \d+ rows/,
      running: /checkpoint \d+ committed: \d+ rows/,
      parallelism: PARALLELISM,
      abandonedParallelism: ABANDONED,
      finalParallelism: FINAL,
    });
    const committed = countLines(run.lines, /restore: committed /);
    const found = countLines(run.lines, /restore: found already committed /);
    const rolledBack = countLines(run.lines, /restore: rolled back (\d+) prepared/);
    const oracle = projectionOracle(generateWorkload(WORKLOAD));
    const { rows, prepared } = await readOrdersTable(databaseUrl, table, ws.jobName);
    const { lost, extra, stale } = tableDifferences(rows, oracle);
    ws.say(
      `${run.kills} kills (${run.killsDuringRestore} during restore) in ${run.seconds.toFixed(1)} s, ${run.written} messages; ${run.killedPrepared} processes died with a prepared transaction as their last word; ` +
        `on restore: ${committed} recorded transactions committed, ${found} found already committed, ${rolledBack} unrecorded ones rolled back`,
    );
    // What the final run at N = 1 rolled back for subtask 2, which exists in no checkpoint when the N = 3 start died before its first one.
    const retiredRolledBack = countLines(
      run.final.lines,
      new RegExp(`rolled back \\d+ prepared.*:${ABANDONED - 1}:\\d+`),
    );
    ws.say(
      `abandoned start ${run.abandoned?.progressed === true ? 'completed a checkpoint' : 'died before its first checkpoint completed'}; the final run rolled back subtask ${ABANDONED - 1}'s leftovers ${retiredRolledBack} time(s)`,
    );
    ws.say(
      `table ${rows.size} rows, oracle ${oracle.size}: lost ${lost.length}, extra (duplicated or resurrected) ${extra.length}, stale ${stale.length}; prepared left ${prepared.length}`,
    );
    expect(lost.slice(0, 20), `lost ids (of ${lost.length})`).toEqual([]);
    expect(extra.slice(0, 20), `extra ids (of ${extra.length})`).toEqual([]);
    expect(stale.slice(0, 20), `stale rows (of ${stale.length})`).toEqual([]);
    expect(prepared).toEqual([]);
    expect(rows.size).toBe(oracle.size);
    expect(committed + found + rolledBack).toBeGreaterThan(0);
    pass();
  });

  it(`Kafka (transactional): ${path}, commits every table change exactly once`, async () => {
    const { ws, pass } = workspace('par-kafka');
    const output = uniqueName('chaos-par-kafka-out');
    ws.topics.push(output);
    const kafka = new Kafka({
      clientId: uniqueName('chaos-par-kafka'),
      brokers: ws.brokers,
      logLevel: logLevel.NOTHING,
    });
    const WORKLOAD = workload(20_251_202);
    ws.say(
      `seed ${settings.seed} (CDCFLOW_CHAOS_SEED), ${path}, topic ${ws.topic} → ${output}, work dir ${ws.workDir}`,
    );
    await createChangelogTopic(kafka, output, 3);
    const records = [...generateWorkload(WORKLOAD)];
    const partitions = workloadByPartition(records);
    // After a kill each subtask may or may not have committed the latest checkpoint (they commit
    // independently), so the committed log lies between two checkpoints' changelogs per subtask;
    // what must hold is: nothing twice, nothing the latest completed checkpoint does not contain.
    let checkedKills = 0;
    const afterKill = async (kill: number): Promise<void> => {
      const [latest] = await completedCheckpointPositions(ws.checkpointDir, ws.jobName);
      const committed = (await readTransactionalLog(ws.brokers, output)).committed
        .map(decodeChange)
        .map((c) => `${c.id}@${c.position}`);
      const set = new Set(committed);
      expect(committed.length - set.size, `after kill ${kill}: duplicated records`).toBe(0);
      const read = partitions.flatMap((rs, p) => rs.slice(0, Number(latest?.positions.get(`${ws.topic}:${p}`) ?? 0)));
      const want = new Set([...changelogOracle(read)].flatMap(([id, list]) => list.map((c) => `${id}@${c.position}`)));
      const ahead = [...set].filter((n) => !want.has(n));
      expect(
        ahead.slice(0, 10),
        `after kill ${kill}: committed but in no completed checkpoint (latest ${latest?.id ?? 'none'})`,
      ).toEqual([]);
      checkedKills += 1;
    };
    const run = await runSinkChaos(ws, {
      file: 'jobs/orders-to-kafka.ts',
      env: { CDCFLOW_TARGET_TOPIC: output },
      workload: WORKLOAD,
      settings,
      prepared: /checkpoint \d+ prepared: \d+ records/,
      running: /checkpoint \d+ committed: \d+ records/,
      recovering: /restore: committing recorded transaction/,
      afterKill,
      parallelism: PARALLELISM,
      abandonedParallelism: ABANDONED,
      finalParallelism: FINAL,
    });
    const recovered = countLines(run.lines, /restore: committed /);
    const superseded = countLines(run.lines, /restore: found superseded/);
    // The final run at N = 1 fences subtask 0's ids, subtask 1's (recorded) and subtask 2's (retired): one line each.
    const fencedIdentities = countLines(run.final.lines, /restore: fenced \d+ transactional ids/);
    ws.say(
      `abandoned start ${run.abandoned?.progressed === true ? 'completed a checkpoint' : 'died before its first checkpoint completed'}; the final run fenced the ids of ${fencedIdentities} sink identities`,
    );
    const log = await readTransactionalLog(ws.brokers, output);
    const changes = log.committed.map(decodeChange);
    const verdict = judgeChangelog(changes, changelogOracle(records), projectionOracle(records));
    ws.say(
      `${run.kills} kills (${run.killsDuringRestore} during restore) in ${run.seconds.toFixed(1)} s, ${run.written} messages; ${run.killedPrepared} processes died with a pre-committed transaction as their last word, ` +
        `${run.killedRecovering} while committing a recorded one; on restore: ${recovered} recorded transactions committed, ${superseded} found committed before; ${checkedKills} kills left nothing committed ahead of a completed checkpoint`,
    );
    ws.say(
      `committed log: ${changes.length} records (${log.commitMarkers} commit markers), ${log.abortedRecords} aborted records (${log.abortMarkers} abort markers), ${log.openRecords} in open transactions; ` +
        `${verdict.changes} changes over ${verdict.keys} keys compared: ${verdict.lost.length} lost, ${verdict.duplicated.length} duplicated, ${verdict.unexpected.length} unexpected, ` +
        `${verdict.wrongRow.length} wrong rows, ${verdict.outOfOrder.length} out of order; compacted view vs projection: ${verdict.compacted.length} differ`,
    );
    expectExactChangelog(verdict, changes.length);
    expect(log.openRecords).toBe(0);
    expect(recovered + superseded).toBeGreaterThan(0);
    pass();
  });
  it.runIf(allSinks)(`Redis (fenced batches): ${path}, equals the projection oracle`, async () => {
    const prefix = uniqueName('chaos-par-orders');
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
    const { ws, pass } = workspace('par-redis', async (passed) => {
      if (passed) {
        const keys = await scanKeys(redis, `${prefix}:*`);
        for (let i = 0; i < keys.length; i += 1_000) await redis.unlink(...keys.slice(i, i + 1_000));
      } else ws.say(`keys under ${prefix}: kept`);
      await redis.quit();
    });
    const WORKLOAD = workload(20_251_203);
    ws.say(
      `seed ${settings.seed} (CDCFLOW_CHAOS_SEED), ${path}, topic ${ws.topic}, prefix ${prefix}, work dir ${ws.workDir}`,
    );
    const run = await runSinkChaos(ws, {
      file: 'jobs/orders-to-redis.ts',
      env: { REDIS_URL: redisUrl, CDCFLOW_REDIS_PREFIX: prefix },
      workload: WORKLOAD,
      settings,
      prepared: /checkpoint \d+ prepared: \d+ keys/,
      running: /checkpoint \d+ committed: \d+ keys/,
      recovering: /restore: applying the recorded batches/,
      parallelism: PARALLELISM,
      abandonedParallelism: ABANDONED,
      finalParallelism: FINAL,
    });
    const discarded = countLines(run.lines, /restore: discarded the staged batches/);
    const oracle = projectionOracle(generateWorkload(WORKLOAD));
    const view = await readRedisView(redis, prefix, false);
    const { lost, extra, stale } = redisDifferences(view.rows, oracle);
    ws.say(
      `${run.kills} kills (${run.killsDuringRestore} during restore) in ${run.seconds.toFixed(1)} s, ${run.written} messages; ${run.killedPrepared} processes died with a staged, unapplied batch as their last word; ` +
        `${discarded} restores discarded staged batches of incomplete checkpoints`,
    );
    ws.say(
      `${oracle.size} keys compared: ${lost.length} lost, ${extra.length} extra (duplicated or resurrected), ${stale.length} stale; ${view.fences.size} fence keys, ${view.staged.length} staged keys left`,
    );
    expect(lost.slice(0, 20), `lost ids (of ${lost.length})`).toEqual([]);
    expect(extra.slice(0, 20), `extra ids (of ${extra.length})`).toEqual([]);
    expect(stale.slice(0, 20), `stale ids (of ${stale.length})`).toEqual([]);
    expect(view.rows.size).toBe(oracle.size);
    expect(view.staged).toEqual([]);
    pass();
  });
  it.runIf(allSinks)(`Elasticsearch (external versions): ${path}, equals the projection oracle`, async () => {
    const index = uniqueName('chaos-par-orders');
    const deadLetterTopic = uniqueName('chaos-par-es-dlq');
    const es = new Client({ node: elasticsearchUrl });
    const { ws, pass } = workspace('par-es', async (passed) => {
      if (passed) await es.indices.delete({ index }, { ignore: [404] });
      else ws.say(`index ${index} kept`);
      await es.close();
    });
    ws.topics.push(deadLetterTopic);
    const WORKLOAD = workload(20_251_204);
    ws.say(
      `seed ${settings.seed} (CDCFLOW_CHAOS_SEED), ${path}, topic ${ws.topic}, index ${index}, work dir ${ws.workDir}`,
    );
    const flushed = /checkpoint \d+ flushed: \d+ documents/;
    const run = await runSinkChaos(ws, {
      file: 'jobs/orders-to-elasticsearch.ts',
      env: { ELASTICSEARCH_URL: elasticsearchUrl, CDCFLOW_ES_INDEX: index, CDCFLOW_DLQ_TOPIC: deadLetterTopic },
      workload: WORKLOAD,
      settings,
      prepared: flushed,
      running: flushed,
      parallelism: PARALLELISM,
      abandonedParallelism: ABANDONED,
      finalParallelism: FINAL,
    });
    const docs = await readIndex(es, index);
    const { lost, resurrected, stale, unknown, compared, deleted } = indexDifferences(
      docs,
      changelogOracle(generateWorkload(WORKLOAD)),
    );
    const letters = await countDeadLetters(ws.brokers, deadLetterTopic);
    ws.say(
      `${run.kills} kills (${run.killsDuringRestore} during restore) in ${run.seconds.toFixed(1)} s, ${run.written} messages; ${run.restores} restores`,
    );
    ws.say(
      `${compared} documents compared (ids, versions, sources): ${lost.length} lost, ${stale.length} stale, ${unknown.length} unknown ids; ${deleted} deleted ids: ${resurrected.length} resurrected; ${letters} dead letters; index holds ${docs.size}`,
    );
    expect(lost.slice(0, 20), `lost ids (of ${lost.length})`).toEqual([]);
    expect(stale.slice(0, 20), `stale documents (of ${stale.length})`).toEqual([]);
    expect(resurrected.slice(0, 20), `resurrected ids (of ${resurrected.length})`).toEqual([]);
    expect(unknown.slice(0, 20)).toEqual([]);
    expect(docs.size).toBe(compared);
    expect(letters).toBe(0);
    pass();
  });
});
