/**
 * Effectively-once into Elasticsearch under SIGKILL. jobs/orders-to-elasticsearch.ts (Debezium
 * orders → keyBy id → upsert → Elasticsearch sink, external version = LSN, 1 s checkpoints) runs
 * in a child process and is SIGKILLed again and again (test/support/sink-chaos.ts): at random
 * moments (mid-bulk too), 0–150 ms after the flush at a barrier (before or after its checkpoint
 * became durable), and during restore. Each restart replays what followed the restored checkpoint.
 *
 * Checked after every kill, with the job dead: the index is at least at the latest completed
 * checkpoint — every live row of its upsert table indexed at that row's LSN or a newer one (or
 * absent because the id's later delete was already flushed), every id it holds a tombstone for
 * absent (the sink flushes before it acknowledges a barrier; ahead of the checkpoint is allowed:
 * the sink is idempotent, not transactional).
 * Checked at the end, after a refresh: the index equals the projection oracle — the same ids, each
 * document's fields as the job maps the oracle row, its version the LSN of the id's last change —
 * no deleted id resurrected, and no dead letter written.
 */
import { Client } from '@elastic/elasticsearch';
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { changelogOracle } from '../../scripts/workload/oracle.ts';
import type { OrderRow } from '../../scripts/workload/orders-model.ts';
import type { WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { loadUpsertState } from '../support/checkpoint-state.ts';
import { countDeadLetters, indexDifferences, readIndex } from '../support/elasticsearch-check.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { ChaosWorkspace, chaosSettings, runSinkChaos } from '../support/sink-chaos.ts';
import { externalVersionOf } from '../../operators/sinks/elasticsearch/external-version.ts';
import type { ChangePosition } from '../../state/change-position.ts';

const settings = chaosSettings();
const WORKLOAD: WorkloadOptions = { keys: 5_000, events: 60_000, duplicateFraction: 0.02, seed: 20_251_127 };

const FLUSHED = /checkpoint \d+ flushed: \d+ documents/;

const { elasticsearchUrl } = testEndpoints();
const ws = new ChaosWorkspace('es-sink');
const say = ws.say;
const index = uniqueName('chaos-orders');
const deadLetterTopic = uniqueName('chaos-es-sink-dlq');
ws.topics.push(deadLetterTopic);
const es = new Client({ node: elasticsearchUrl });
let passed = false;

afterAll(async () => {
  if (passed) await es.indices.delete({ index }, { ignore: [404] });
  else say(`index ${index} kept`);
  await es.close();
  await ws.cleanup(passed);
});

describe('orders → Elasticsearch (external versions) under SIGKILL', () => {
  it(`ends with exactly the projection oracle's documents after ${settings.kills} kills, never behind a completed checkpoint`, async () => {
    say(
      `seed ${settings.seed} (CDCFLOW_CHAOS_SEED), ${settings.kills} kills (CDCFLOW_CHAOS_KILLS), topic ${ws.topic}, index ${index}, work dir ${ws.workDir}`,
    );
    const changelog = changelogOracle(generateWorkload(WORKLOAD));
    const deletedAfter = (id: number, position: ChangePosition) =>
      changelog.get(id)?.some((c) => c.row === null && c.position > position) === true;
    const perKill = { checked: 0, ahead: 0 };
    const afterKill = async (kill: number): Promise<void> => {
      const state = await loadUpsertState<OrderRow>({
        checkpointDir: ws.checkpointDir,
        jobName: ws.jobName,
        operatorUid: 'orders-upsert',
      }).catch(() => undefined);
      if (state === undefined) return;
      const docs = await readIndex(es, index);
      const behind: string[] = [];
      for (const [key, entry] of state.entries) {
        const doc = docs.get(key as number);
        if (entry.row === null) {
          if (doc !== undefined)
            behind.push(
              `id ${String(key)}: deleted at ${entry.position} in checkpoint ${state.checkpoint.id}, indexed at version ${doc.version}`,
            );
        } else if (doc === undefined && deletedAfter(key as number, entry.position))
          perKill.ahead += 1; // a later delete already flushed
        else if (doc === undefined || doc.version < externalVersionOf(entry.position))
          behind.push(
            `id ${String(key)}: ${entry.position} in checkpoint ${state.checkpoint.id}, indexed ${doc === undefined ? 'not at all' : `at version ${doc.version}`}`,
          );
        else if (doc.version > externalVersionOf(entry.position)) perKill.ahead += 1;
      }
      expect(
        behind.slice(0, 10),
        `after kill ${kill}: the index is behind checkpoint ${state.checkpoint.id} (${behind.length} ids)`,
      ).toEqual([]);
      perKill.checked += 1;
    };

    const run = await runSinkChaos(ws, {
      file: 'jobs/orders-to-elasticsearch.ts',
      env: { ELASTICSEARCH_URL: elasticsearchUrl, CDCFLOW_ES_INDEX: index, CDCFLOW_DLQ_TOPIC: deadLetterTopic },
      workload: WORKLOAD,
      settings,
      prepared: FLUSHED,
      running: FLUSHED,
      afterKill,
    });
    say(
      `${run.kills} kills (${run.killsDuringRestore} during restore) in ${run.seconds.toFixed(1)} s, ${run.written} messages; ${run.restores} restores; ` +
        `after each kill (${perKill.checked} checked): the index never behind the latest completed checkpoint, ${perKill.ahead} documents ahead of it (summed)`,
    );

    const docs = await readIndex(es, index);
    const { lost, resurrected, stale, unknown, compared, deleted } = indexDifferences(docs, changelog);
    const letters = await countDeadLetters(ws.brokers, deadLetterTopic);
    say(
      `${run.kills} kills, ${compared} documents compared (ids, versions, sources): ${lost.length} lost, ${stale.length} stale, ${unknown.length} unknown ids; ` +
        `${deleted} deleted ids: ${resurrected.length} resurrected; ${letters} dead letters; index holds ${docs.size}`,
    );
    expect(lost.slice(0, 20), `lost ids (of ${lost.length})`).toEqual([]);
    expect(stale.slice(0, 20), `stale documents (of ${stale.length})`).toEqual([]);
    expect(resurrected.slice(0, 20), `resurrected ids (of ${resurrected.length})`).toEqual([]);
    expect(unknown.slice(0, 20)).toEqual([]);
    expect(docs.size).toBe(compared);
    expect(letters).toBe(0);
    expect(perKill.checked).toBeGreaterThan(0);
    passed = true;
  });
});
