/**
 * Exactly-once into Kafka under SIGKILL. jobs/orders-to-kafka.ts (Debezium orders → keyBy id →
 * upsert → transactional Kafka sink, one transaction per 1 s checkpoint) runs in a child process
 * and is SIGKILLed again and again (test/support/sink-chaos.ts): at random moments, 0–150 ms after
 * a pre-commit (between the flush at the barrier and EndTxn after the checkpoint completed), and
 * 0–20 ms after a restore began committing a transaction the checkpoint recorded.
 *
 * After every kill, with the job dead, the committed log must be exactly the changelog of what a
 * completed checkpoint had read (nothing visible before its checkpoint completed, nothing of a
 * committed one missing). At the end, "exactly once" for a changelog topic, against the oracle:
 *  - the changelog oracle (scripts/workload/oracle.ts `changelogOracle`): per id, the table changes
 *    the LSN-guarded upsert emits for the whole input, in LSN order. Every one of them must be in
 *    the committed log exactly once — no (id, LSN) twice, none missing, none the oracle lacks —
 *    with its row (or a tombstone for a delete), and per id in LSN order;
 *  - the compacted view (last record per key) must equal the projection oracle;
 *  - no transaction may be left open (its records would hold back every read_committed reader).
 * The committed log is read with raw fetches, each transaction resolved by its own marker
 * (`readTransactionalLog`), because kafkajs's read_committed filter is known to let aborted
 * records through in some interleavings (README); a kafkajs read_committed consumer reads the
 * topic too and the test reports whether it agrees.
 */
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload, type WorkloadRecord } from '../../scripts/workload/generator.ts';
import { changelogOracle, projectionOracle } from '../../scripts/workload/oracle.ts';
import type { WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { completedCheckpointPositions } from '../support/checkpoint-state.ts';
import { uniqueName } from '../support/endpoints.ts';
import {
  createChangelogTopic,
  decodeChange,
  expectExactChangelog,
  judgeChangelog,
  recordSetDifference,
  workloadByPartition,
} from '../support/changelog-check.ts';
import { readCommittedWithKafkajs, readTransactionalLog } from '../support/kafka-read.ts';
import { ChaosWorkspace, chaosSettings, countLines, runSinkChaos } from '../support/sink-chaos.ts';

const settings = chaosSettings();
const WORKLOAD: WorkloadOptions = { keys: 5_000, events: 60_000, duplicateFraction: 0.02, seed: 20_251_125 };
const OUTPUT_PARTITIONS = 3;

const PREPARED = /checkpoint \d+ prepared: \d+ records/;
const COMMITTED = /checkpoint \d+ committed: \d+ records/;
const RECOVERING = /restore: committing recorded transaction/;

const ws = new ChaosWorkspace('kafka-sink');
const say = ws.say;
const output = uniqueName('chaos-kafka-sink-out');
ws.topics.push(output);
const kafka = new Kafka({ clientId: uniqueName('chaos-kafka-sink'), brokers: ws.brokers, logLevel: logLevel.NOTHING });
let passed = false;

afterAll(async () => {
  if (!passed) say(`output topic ${output} kept`);
  await ws.cleanup(passed);
});

/**
 * With the job dead, the committed log must be exactly the changelog of what some completed
 * checkpoint had read (the newest one, or an older one whose successor's commit was still pending
 * at the kill): nothing visible that no completed checkpoint contains, nothing of a committed
 * checkpoint missing. Commit markers reach the partitions a moment after EndTxn, so a mismatch is
 * read again a few times before it counts.
 */
async function committedMatchesACheckpoint(
  partitions: readonly WorkloadRecord[][],
): Promise<{ matched: number | undefined; latest: number | undefined; detail: string }> {
  let detail = '';
  for (let attempt = 0; attempt < 20; attempt++) {
    const checkpoints = await completedCheckpointPositions(ws.checkpointDir, ws.jobName);
    const log = await readTransactionalLog(ws.brokers, output);
    const committed = log.committed.map(decodeChange).map((c) => `${c.id}@${c.position}`);
    const set = new Set(committed);
    if (set.size !== committed.length)
      return {
        matched: undefined,
        latest: checkpoints[0]?.id,
        detail: `${committed.length - set.size} duplicated records`,
      };
    if (checkpoints.length === 0 && set.size === 0) return { matched: 0, latest: undefined, detail: '' };
    for (const { id, positions } of checkpoints) {
      const read = partitions.flatMap((records, p) => records.slice(0, Number(positions.get(`${ws.topic}:${p}`) ?? 0)));
      const want = new Set(
        [...changelogOracle(read)].flatMap(([key, list]) => list.map((c) => `${key}@${c.position}`)),
      );
      const missing = [...want].filter((n) => !set.has(n)).length;
      const extra = [...set].filter((n) => !want.has(n)).length;
      if (missing === 0 && extra === 0) return { matched: id, latest: checkpoints[0]?.id, detail: '' };
      if (id === checkpoints[0]?.id)
        detail = `vs checkpoint ${id}: ${missing} missing, ${extra} extra of ${set.size} committed (${log.openRecords} in open transactions)`;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { matched: undefined, latest: undefined, detail };
}

describe('orders → Kafka (transactional) under SIGKILL', () => {
  it(`commits every table change exactly once after ${settings.kills} kills`, async () => {
    say(
      `seed ${settings.seed} (CDCFLOW_CHAOS_SEED), ${settings.kills} kills (CDCFLOW_CHAOS_KILLS), topic ${ws.topic} → ${output}, work dir ${ws.workDir}`,
    );
    await createChangelogTopic(kafka, output, OUTPUT_PARTITIONS);
    const records = [...generateWorkload(WORKLOAD)];
    const partitions = workloadByPartition(records);
    const perKill = { latest: 0, older: 0 };
    const afterKill = async (kill: number): Promise<void> => {
      const { matched, latest, detail } = await committedMatchesACheckpoint(partitions);
      expect(
        matched,
        `after kill ${kill}: the committed log is not the changelog of any completed checkpoint (${detail})`,
      ).toBeDefined();
      perKill[matched === latest ? 'latest' : 'older'] += 1;
    };
    const run = await runSinkChaos(ws, {
      file: 'jobs/orders-to-kafka.ts',
      env: { CDCFLOW_TARGET_TOPIC: output },
      workload: WORKLOAD,
      settings,
      prepared: PREPARED,
      running: COMMITTED,
      recovering: RECOVERING,
      afterKill,
    });
    const recovered = countLines(run.lines, /restore: committed /);
    const superseded = countLines(run.lines, /restore: found superseded/);
    say(
      `${run.kills} kills (${run.killsDuringRestore} during restore) in ${run.seconds.toFixed(1)} s, ${run.written} messages; ` +
        `${run.killedPrepared} processes died with a pre-committed transaction as their last word, ${run.killedRecovering} while committing a recorded one on restore; ` +
        `on restore: ${recovered} recorded transactions committed, ${superseded} found committed before; ` +
        `after each kill the committed log was the changelog of the latest completed checkpoint ${perKill.latest} times, of an older one (the latest's commit pending) ${perKill.older} times`,
    );

    const log = await readTransactionalLog(ws.brokers, output);
    const changes = log.committed.map(decodeChange);
    const verdict = judgeChangelog(changes, changelogOracle(records), projectionOracle(records));
    say(
      `committed log: ${changes.length} records (${log.commitMarkers} commit markers), ${log.abortedRecords} aborted records (${log.abortMarkers} abort markers), ${log.openRecords} in open transactions; ` +
        `oracle: ${verdict.changes} table changes over ${verdict.keys} keys`,
    );
    say(
      `${run.kills} kills, ${verdict.changes} changes compared: ${verdict.lost.length} lost, ${verdict.duplicated.length} duplicated, ${verdict.unexpected.length} unexpected, ` +
        `${verdict.wrongRow.length} wrong rows, ${verdict.outOfOrder.length} out of order; compacted view vs projection (${verdict.keys} keys): ${verdict.compacted.length} differ`,
    );

    // The same topic through kafkajs's own read_committed consumer, up to the last committed record of each partition.
    const ends = new Map<number, bigint>();
    for (const r of log.committed)
      if (r.offset + 1n > (ends.get(r.partition) ?? 0n)) ends.set(r.partition, r.offset + 1n);
    const viaKafkajs = await readCommittedWithKafkajs(kafka, output, ends);
    const diff = recordSetDifference(log.committed, viaKafkajs);
    say(
      diff.extra === 0 && diff.missing === 0
        ? `kafkajs read_committed consumer agrees: ${viaKafkajs.length} records`
        : `kafkajs read_committed consumer DISAGREES: ${viaKafkajs.length} records, ${diff.extra} not committed (aborted records let through), ${diff.missing} committed ones missing`,
    );

    expectExactChangelog(verdict, changes.length);
    expect(log.openRecords).toBe(0);
    expect(recovered + superseded).toBeGreaterThan(0);
    expect(log.abortedRecords).toBeGreaterThan(0); // the kills did cut transactions short
    passed = true;
  });
});
