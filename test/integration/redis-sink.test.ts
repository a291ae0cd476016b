import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Operator } from '../../operators/operator.ts';
import {
  ALREADY_APPLIED,
  APPLY_SCRIPT,
  CLAIM_SCRIPT,
  EPOCH_FENCED,
  batchKeys,
} from '../../operators/sinks/redis/fenced-batch.ts';
import { redisSink } from '../../operators/sinks/redis/redis-sink.ts';
import type { SinkDefinition } from '../../operators/sinks/sink.ts';
import { SINK_COMMIT_SECONDS, SINK_VISIBILITY_SECONDS } from '../../operators/sinks/sink-metrics.ts';
import { sinkInstanceName } from '../../operators/sinks/two-phase-commit.ts';
import type { TableChange } from '../../operators/table-change.ts';
import type { ChangeEvent } from '../../runtime/index.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { RecordingMetrics, recordingOperatorContext } from '../support/operator-context.ts';
import { deleteChange, orderEvent, runUpsertJobFailingOnce, upsertChange } from '../support/sink-fixtures.ts';

interface Order {
  readonly id: number;
  readonly status: string;
}
type Change = TableChange<number, Order>;

const upsert = (id: number, status: string, lsn: number): Change =>
  upsertChange({ id, status }, lsn, Date.now() - 2000);
const del = (id: number, lsn: number): Change => deleteChange(id, lsn, Date.now() - 2000);

describe('redis sink (real server)', () => {
  const url = testEndpoints().redisUrl;
  const jobName = uniqueName('redissink');
  const prefix = uniqueName('rs');
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis(url, { maxRetriesPerRequest: 2 });
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  async function openSink<T>(
    sink: SinkDefinition<T>,
    uid: string,
    restored?: unknown,
  ): Promise<{ op: Operator<T, never>; metrics: RecordingMetrics }> {
    const metrics = new RecordingMetrics();
    const context = recordingOperatorContext(jobName, uid, metrics);
    const op = sink.createOperator();
    await op.open?.(context, restored);
    return { op, metrics };
  }
  const emit = async <T>(op: Operator<T, never>, values: T[]) =>
    op.processBatch(
      values.map((value) => ({ value, timestamp: undefined })),
      { emit: () => undefined, emitSide: () => undefined },
    );
  const internal = (uid: string) =>
    `${prefix}-${uid}:__cdcflow:${sinkInstanceName({ jobName, sinkUid: uid, subtaskIndex: 0 })}`;
  const values = async (p: string, ids: number[]) => redis.mget(...ids.map((id) => `${p}:${id}`));

  it('applies a checkpoint batch only when the checkpoint completes, with the fence, atomically', async () => {
    const p = `${prefix}-atomic`;
    const { op, metrics } = await openSink(redisSink<number, Order>({ url, prefix: p }), 'atomic');
    await emit(op, [
      upsert(1, 'pending', 1),
      upsert(2, 'pending', 2),
      upsert(1, 'paid', 3),
      upsert(3, 'pending', 4),
      del(3, 5),
    ]);
    const snapshot = await op.snapshotState?.(1);
    expect(JSON.stringify(snapshot).length).toBeLessThan(200); // the batch is staged in Redis, not in the checkpoint
    expect(await values(p, [1, 2, 3])).toEqual([null, null, null]);
    expect(await redis.hlen(`${internal('atomic')}:staged:1`)).toBe(3);
    await op.notifyCheckpointComplete?.(1);
    expect(await values(p, [1, 2, 3])).toEqual([
      JSON.stringify({ id: 1, status: 'paid' }),
      JSON.stringify({ id: 2, status: 'pending' }),
      null,
    ]);
    expect(await redis.get(`${internal('atomic')}:applied`)).toBe('1');
    expect(await redis.exists(`${internal('atomic')}:staged:1`, `${internal('atomic')}:staged`)).toBe(0);
    // One per key applied (the last write per key is what became visible), all ≥ 2 s old.
    const freshness = metrics.observed(SINK_VISIBILITY_SECONDS);
    expect(freshness).toHaveLength(3);
    expect(Math.min(...freshness)).toBeGreaterThanOrEqual(2);
    expect(metrics.observations.get(SINK_VISIBILITY_SECONDS)?.[0]?.labels).toEqual({ sink: 'redis' });
    expect(metrics.counts.get('cdcflow_sink_records_committed_total')).toBe(3);
    expect(metrics.observed(SINK_COMMIT_SECONDS)).toHaveLength(1);
    await op.close?.();
  });

  it('skips a replayed checkpoint: the fence is above it', async () => {
    const p = `${prefix}-fence`;
    const zombie = await openSink(
      redisSink<number, Order>({ url, prefix: p, log: () => undefined, retry: { commitAttempts: 1 } }),
      'fence',
    );
    await emit(zombie.op, [upsert(1, 'stale', 1)]);
    await zombie.op.snapshotState?.(5); // staged by an instance that then stalls
    const live = await openSink(redisSink<number, Order>({ url, prefix: p, log: () => undefined }), 'fence');
    await emit(live.op, [upsert(1, 'paid', 2)]);
    const snapshot = await live.op.snapshotState?.(6);
    await live.op.notifyCheckpointComplete?.(6);
    // The restore applies checkpoint 6 again, and the stale instance commits its checkpoint 5 late.
    const restored = await openSink(
      redisSink<number, Order>({ url, prefix: p, log: () => undefined }),
      'fence',
      snapshot,
    );
    expect(restored.metrics.counts.get('cdcflow_sink_commits_repeated_total')).toBe(1);
    // (In this process the restarted instances closed the stale one; another process would run this script.)
    const keys = batchKeys(p, sinkInstanceName({ jobName, sinkUid: 'fence', subtaskIndex: 0 }));
    await redis.hset(keys.staged(5), `${p}:1`, 's|"stale"'); // its stage survived the restore's cleanup
    expect(await redis.eval(APPLY_SCRIPT, 4, keys.fence, keys.staged(5), keys.index, keys.epoch, 5, '5', '')).toBe(
      ALREADY_APPLIED,
    );
    await expect(zombie.op.notifyCheckpointComplete?.(5)).rejects.toThrow(/closed/);
    expect(await values(p, [1])).toEqual([JSON.stringify({ id: 1, status: 'paid' })]);
    expect(await redis.get(keys.fence)).toBe('6');
    expect(await redis.exists(keys.staged(5))).toBe(0);
    for (const s of [live, restored]) await s.op.close?.();
  });

  it('group mode: an older owner epoch applies nothing once a newer owner raised the epoch key', async () => {
    const p = `${prefix}-epoch`;
    const keys = batchKeys(p, sinkInstanceName({ jobName, sinkUid: 'epoch', subtaskIndex: 0 }));
    expect(await redis.eval(CLAIM_SCRIPT, 1, keys.epoch, 1)).toBe(0);
    // A zombie of epoch 1 staged checkpoint 7 (another process: the in-process registry does not close it).
    await redis.zadd(keys.index, 7, keys.member(7, 1));
    await redis.hset(keys.staged(7, 1), `${p}:1`, 's|"zombie"');
    expect(await redis.eval(CLAIM_SCRIPT, 1, keys.epoch, 2)).toBe(0);
    expect(await redis.eval(CLAIM_SCRIPT, 1, keys.epoch, 1)).toBe(2); // never lowered
    const apply = (epoch: number | '') =>
      redis.eval(APPLY_SCRIPT, 4, keys.fence, keys.staged(7, 1), keys.index, keys.epoch, 7, keys.member(7, 1), epoch);
    expect(await apply(1)).toBe(EPOCH_FENCED);
    expect(await values(p, [1])).toEqual([null]);
    expect(await redis.get(keys.fence)).toBeNull();
    expect(await redis.hlen(keys.staged(7, 1))).toBe(1); // left for the new owner's restore to discard
    expect(await apply('')).toBe(1); // outside group mode: no epoch check, as before
  });

  it('on restore applies the recorded batch and discards batches of checkpoints that did not complete', async () => {
    const p = `${prefix}-restore`;
    const sink = redisSink<number, Order>({ url, prefix: p, log: () => undefined });
    const first = await openSink(sink, 'restore');
    await emit(first.op, [upsert(1, 'pending', 1)]);
    const completed = await first.op.snapshotState?.(3); // durable; the process died before the commit
    await emit(first.op, [upsert(2, 'pending', 2)]);
    await first.op.snapshotState?.(4); // staged, never completed
    expect(await redis.zrange(`${internal('restore')}:staged`, 0, -1)).toEqual(['3', '4']);
    const second = await openSink(sink, 'restore', completed);
    expect(await values(p, [1, 2])).toEqual([JSON.stringify({ id: 1, status: 'pending' }), null]);
    expect(await redis.exists(`${internal('restore')}:staged:4`, `${internal('restore')}:staged`)).toBe(0);
    expect(second.metrics.counts.get('cdcflow_sink_rolled_back_total')).toBe(1);
    await second.op.close?.();
  });

  it('fails loudly when a staged batch of a completed checkpoint is gone', async () => {
    const p = `${prefix}-lost`;
    const { op } = await openSink(redisSink<number, Order>({ url, prefix: p, retry: { commitAttempts: 1 } }), 'lost');
    await emit(op, [upsert(1, 'pending', 1)]);
    await op.snapshotState?.(2);
    await redis.del(`${internal('lost')}:staged:2`);
    await expect(op.notifyCheckpointComplete?.(2)).rejects.toThrow(/gone and was never applied/);
    await op.close?.();
  });

  it('maps plain records with toWrite, with TTLs and deletes', async () => {
    const p = `${prefix}-mapped`;
    const sink = redisSink<{ user: string; score: number | null }>({
      url,
      prefix: p,
      toWrite: (r) => ({
        key: `score:${r.user}`,
        value: r.score === null ? null : String(r.score),
        ...(r.user === 'tmp' ? { ttl: 60 } : {}),
      }),
    });
    const { op } = await openSink(sink, 'mapped');
    await emit(op, [
      { user: 'ann', score: 1 },
      { user: 'bob', score: 2 },
      { user: 'tmp', score: 3 },
    ]);
    await op.snapshotState?.(1);
    await op.notifyCheckpointComplete?.(1);
    await emit(op, [
      { user: 'bob', score: null },
      { user: 'ann', score: 5 },
    ]);
    await op.snapshotState?.(2);
    await op.notifyCheckpointComplete?.(2);
    expect(await redis.mget(`${p}:score:ann`, `${p}:score:bob`, `${p}:score:tmp`)).toEqual(['5', null, '3']);
    const ttl = await redis.pttl(`${p}:score:tmp`);
    expect(ttl).toBeGreaterThan(50_000);
    expect(await redis.pttl(`${p}:score:ann`)).toBe(-1);
    await op.close?.();
  });

  it('runs in a job: the keys equal the projection after a failure and a restore', async () => {
    const p = `${prefix}-job`;
    const dir = mkdtempSync(join(tmpdir(), 'cdcflow-redissink-'));
    try {
      const events: ChangeEvent<Order>[] = [];
      const latest = new Map<number, string | null>();
      for (let lsn = 1; lsn <= 3000; lsn++) {
        const id = 1 + ((lsn * 7919) % 300);
        const op = lsn % 19 === 0 ? 'd' : 'u';
        const row = { id, status: `s${lsn}` };
        latest.set(id, op === 'd' ? null : JSON.stringify(row));
        events.push(orderEvent(lsn, op, row));
      }
      const result = await runUpsertJobFailingOnce({
        jobName: `${jobName}-job`,
        dir,
        events,
        failAt: 1900,
        sink: redisSink<number, Order>({ url, prefix: p, log: () => undefined }),
      });
      expect(result.restarts).toBe(1);
      const ids = [...latest.keys()].sort((a, b) => a - b);
      expect(await values(p, ids)).toEqual(ids.map((id) => latest.get(id) ?? null));
      expect((await redis.keys(`${p}:__cdcflow:*:staged*`)).length).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
