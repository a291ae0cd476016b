/**
 * Exactly-once into Redis under SIGKILL. jobs/orders-to-redis.ts (Debezium orders → keyBy id →
 * upsert → fenced Redis sink, 1 s checkpoints) runs in a child process and is SIGKILLed again
 * and again (test/support/sink-chaos.ts): at random moments, 0–150 ms after a batch was staged at
 * the barrier (before or after its checkpoint became durable, before the fenced apply), during
 * restore, and 0–20 ms after a restore began applying the batches its checkpoint recorded.
 *
 * Checked after every kill, with the job dead: the fence (last applied checkpoint) is at or below
 * the latest completed checkpoint — nothing is visible that no completed checkpoint contains —
 * and the data keys equal the upsert table of the checkpoint the fence names (when retention
 * still has it): every batch up to the fence applied whole, nothing after it.
 * Checked at the end: the keys under the run's prefix equal the projection oracle (values, and the
 * 30-day TTL exactly on delivered orders), one fence, at or above every commit a process printed
 * and at or below the final savepoint, and no staged batch left behind.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { projectionOracle } from '../../scripts/workload/oracle.ts';
import type { OrderRow } from '../../scripts/workload/orders-model.ts';
import type { WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { loadUpsertState, type LoadedUpsertState } from '../support/checkpoint-state.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { readRedisView, redisDifferences, scanKeys } from '../support/redis-check.ts';
import { ChaosWorkspace, chaosSettings, countLines, runSinkChaos } from '../support/sink-chaos.ts';

const settings = chaosSettings();
const WORKLOAD: WorkloadOptions = { keys: 5_000, events: 60_000, duplicateFraction: 0.02, seed: 20_251_126 };
const DELIVERED_TTL_MS = 30 * 86_400_000;

const PREPARED = /checkpoint \d+ prepared: \d+ keys/;
const COMMITTED = /checkpoint (\d+) committed: \d+ keys/;
const RECOVERING = /restore: applying the recorded batches/;

const { redisUrl } = testEndpoints();
const ws = new ChaosWorkspace('redis-sink');
const say = ws.say;
const prefix = uniqueName('chaos-orders');
const redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
let passed = false;

afterAll(async () => {
  if (passed) {
    const keys = await scanKeys(redis, `${prefix}:*`);
    for (let i = 0; i < keys.length; i += 1_000) await redis.unlink(...keys.slice(i, i + 1_000));
  } else say(`keys under ${prefix}: kept`);
  await redis.quit();
  await ws.cleanup(passed);
});

function liveRows(state: LoadedUpsertState<OrderRow>): Map<number, OrderRow> {
  const live = new Map<number, OrderRow>();
  for (const [key, entry] of state.entries) if (entry.row !== null) live.set(key as number, entry.row);
  return live;
}

describe('orders → Redis (fenced batches) under SIGKILL', () => {
  it(`ends with exactly the projection oracle's keys after ${settings.kills} kills, never ahead of a completed checkpoint`, async () => {
    say(
      `seed ${settings.seed} (CDCFLOW_CHAOS_SEED), ${settings.kills} kills (CDCFLOW_CHAOS_KILLS), topic ${ws.topic}, prefix ${prefix}, work dir ${ws.workDir}`,
    );
    const load = (from?: number) =>
      loadUpsertState<OrderRow>({
        checkpointDir: ws.checkpointDir,
        jobName: ws.jobName,
        operatorUid: 'orders-upsert',
        ...(from === undefined ? {} : { from }),
      });
    const perKill = { exact: 0, pendingCommit: 0, unverifiable: 0 };
    const afterKill = async (kill: number): Promise<void> => {
      const view = await readRedisView(redis, prefix, false);
      const fence = Math.max(0, ...view.fences.values());
      const latest = await load().catch(() => undefined);
      expect(
        fence,
        `after kill ${kill}: fence ${fence} is ahead of the latest completed checkpoint ${latest?.checkpoint.id ?? 'none'}`,
      ).toBeLessThanOrEqual(latest?.checkpoint.id ?? 0);
      if (fence < (latest?.checkpoint.id ?? 0)) perKill.pendingCommit += 1; // completed, not yet applied (or empty): its restore applies it
      const atFence =
        fence === 0 ? undefined : fence === latest?.checkpoint.id ? latest : await load(fence).catch(() => undefined);
      if (fence !== 0 && atFence === undefined) return void (perKill.unverifiable += 1); // retention removed it
      const { lost, extra, stale } = redisDifferences(view.rows, atFence === undefined ? new Map() : liveRows(atFence));
      expect(
        { lost: lost.slice(0, 10), extra: extra.slice(0, 10), stale: stale.slice(0, 10) },
        `after kill ${kill}: Redis ≠ upsert table of checkpoint ${fence}`,
      ).toEqual({ lost: [], extra: [], stale: [] });
      perKill.exact += 1;
    };

    const run = await runSinkChaos(ws, {
      file: 'jobs/orders-to-redis.ts',
      env: { REDIS_URL: redisUrl, CDCFLOW_REDIS_PREFIX: prefix },
      workload: WORKLOAD,
      settings,
      prepared: PREPARED,
      running: COMMITTED,
      recovering: RECOVERING,
      afterKill,
    });
    const discarded = countLines(run.lines, /restore: discarded the staged batches/);
    say(
      `${run.kills} kills (${run.killsDuringRestore} during restore) in ${run.seconds.toFixed(1)} s, ${run.written} messages; ` +
        `${run.killedPrepared} processes died with a staged, unapplied batch as their last word, ${run.killedRecovering} while applying recorded batches on restore; ${discarded} restores discarded staged batches of incomplete checkpoints; ` +
        `after each kill: ${perKill.exact} times Redis = the checkpoint at the fence, ${perKill.pendingCommit} with the latest checkpoint's apply still pending, ${perKill.unverifiable} unverifiable (retention)`,
    );

    const oracle = projectionOracle(generateWorkload(WORKLOAD));
    const view = await readRedisView(redis, prefix, true);
    const { lost, extra, stale } = redisDifferences(view.rows, oracle);
    const wrongTtl = [...view.rows]
      .filter(([id, { pttl }]) =>
        oracle.get(id)?.status === 'delivered'
          ? !(pttl > DELIVERED_TTL_MS - 3_600_000 && pttl <= DELIVERED_TTL_MS)
          : pttl !== -1,
      )
      .map(([id, { pttl }]) => `${id}: ${pttl}`);
    const final = await load();
    const fence = [...view.fences.values()][0] ?? 0;
    const printed = Math.max(0, ...run.lines.map((l) => Number(COMMITTED.exec(l)?.[1] ?? 0)));
    say(
      `${run.kills} kills, ${oracle.size} keys compared: ${lost.length} lost, ${extra.length} extra (duplicated or resurrected), ${stale.length} stale, ${wrongTtl.length} wrong TTLs; ` +
        `fence ${fence} (highest commit printed ${printed}, final ${final.checkpoint.kind} ${final.checkpoint.id}), ${view.fences.size} fence keys, ${view.staged.length} staged keys left`,
    );
    expect(lost.slice(0, 20), `lost ids (of ${lost.length})`).toEqual([]);
    expect(extra.slice(0, 20), `extra ids (of ${extra.length})`).toEqual([]);
    expect(stale.slice(0, 20), `stale ids (of ${stale.length})`).toEqual([]);
    expect(wrongTtl.slice(0, 20), `wrong TTLs (of ${wrongTtl.length})`).toEqual([]);
    expect(view.rows.size).toBe(oracle.size);
    expect(view.fences.size).toBe(1);
    expect(fence).toBeGreaterThanOrEqual(printed);
    expect(fence).toBeLessThanOrEqual(final.checkpoint.id);
    expect(final.checkpoint.kind).toBe('savepoint');
    expect(view.staged).toEqual([]);
    expect(perKill.exact).toBeGreaterThan(0);
    passed = true;
  });
});
