/**
 * The sink metric plumbing on fakes: which changes count as visible and when, per sink kind.
 * Real servers: test/integration/*-sink.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { Operator, OperatorContext } from '../../../../operators/operator.ts';
import type { BulkClient, BulkItemResult } from '../../../../operators/sinks/elasticsearch/bulk-client.ts';
import { tableChangeAction } from '../../../../operators/sinks/elasticsearch/document-action.ts';
import { elasticsearchSink } from '../../../../operators/sinks/elasticsearch/elasticsearch-sink.ts';
import { ALREADY_APPLIED } from '../../../../operators/sinks/redis/fenced-batch.ts';
import type { RedisSession } from '../../../../operators/sinks/redis/redis-session.ts';
import { redisSink } from '../../../../operators/sinks/redis/redis-sink.ts';
import {
  SINK_COMMIT_SECONDS,
  SINK_VISIBILITY_SECONDS,
  SINK_RECORDS_COMMITTED,
  SinkMetrics,
} from '../../../../operators/sinks/sink-metrics.ts';
import type { TableChange } from '../../../../operators/table-change.ts';
import { RecordingMetrics, recordingOperatorContext } from '../../../support/operator-context.ts';
import { streamPosition } from '../../../../state/change-position.ts';

type Change = TableChange<number, { id: number }>;
const upsert = (id: number, lsn: number, sourceTsMs: number): Change => ({
  kind: 'upsert',
  key: id,
  row: { id },
  previous: null,
  position: streamPosition(0, lsn),
  sourceTsMs,
});
const noOutput = { emit: () => undefined, emitSide: () => undefined };
const feed = <T>(op: Operator<T, never>, ...values: T[]) =>
  op.processBatch(
    values.map((value) => ({ value, timestamp: undefined })),
    noOutput,
  );

/** A clock the test moves by hand. */
function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe('SinkMetrics', () => {
  it('observes now − source time per change, in seconds, and counts the records', () => {
    const metrics = new RecordingMetrics();
    const sink = new SinkMetrics(metrics, 'kafka');
    sink.visible([9_000, 9_750, 10_500], 10_000, 4); // the last source clock runs ahead: clamped to 0
    sink.committed(9_900, 10_000);
    sink.committed(undefined, 10_000); // pre-committed by an earlier process: unknown, not observed
    expect(metrics.observed(SINK_VISIBILITY_SECONDS)).toEqual([1, 0.25, 0]);
    expect(metrics.observations.get(SINK_VISIBILITY_SECONDS)?.every((o) => o.labels['sink'] === 'kafka')).toBe(true);
    expect(metrics.observed(SINK_COMMIT_SECONDS)).toEqual([0.1]);
    expect(metrics.counts.get(SINK_RECORDS_COMMITTED)).toBe(4);
  });
});

describe('elasticsearch sink freshness', () => {
  it('counts an applied document visible when its bulk request is acknowledged; a stale one not at all', async () => {
    const time = clock();
    const statuses: number[][] = [[201, 409], [200]];
    const client: BulkClient = {
      bulk: (lines) => {
        time.advance(40); // the request takes 40 ms
        const items = (statuses.shift() ?? []).map((status): BulkItemResult => ({
          status,
          errorType: undefined,
          errorReason: undefined,
        }));
        expect(items).toHaveLength(lines.filter((l) => 'index' in l).length);
        return Promise.resolve({ ok: true, items });
      },
      close: () => Promise.resolve(),
    };
    const metrics = new RecordingMetrics();
    const op = elasticsearchSink<Change>({
      node: 'http://unused',
      client,
      toAction: tableChangeAction('orders'),
      maxBufferedActions: 2,
    }).createOperator();
    await op.open?.(recordingOperatorContext('job', 'es', metrics, time.now), undefined);
    const t0 = time.now();
    await feed(op, upsert(1, 10, t0 - 1000), upsert(2, 11, t0 - 2000)); // buffer full: flushed now, item 2 stale
    expect(metrics.observed(SINK_VISIBILITY_SECONDS)).toEqual([1.04]);
    expect(metrics.observed(SINK_COMMIT_SECONDS)).toEqual([]); // not a pre-commit
    time.advance(500);
    await feed(op, upsert(3, 12, t0));
    await op.snapshotState?.(1); // the barrier flush: pre-commit start → acknowledged
    expect(metrics.observed(SINK_VISIBILITY_SECONDS)).toEqual([1.04, 0.58]);
    expect(metrics.observed(SINK_COMMIT_SECONDS)).toEqual([0.04]);
    expect(metrics.counts.get(SINK_RECORDS_COMMITTED)).toBe(2);
    await op.snapshotState?.(2); // nothing buffered: no commit observation
    expect(metrics.observed(SINK_COMMIT_SECONDS)).toHaveLength(1);
    await op.close?.();
  });
});

/** Enough of Redis for the fenced-batch protocol: staged hashes and the apply script's reply. */
function fakeRedis(): { connect: () => Promise<RedisSession>; applied: Map<string, string> } {
  const hashes = new Map<string, string[]>();
  const applied = new Map<string, string>();
  let fence = 0;
  const run = (command: string, ...args: (string | number)[]): unknown => {
    if (command === 'HSET')
      hashes.set(String(args[0]), [...(hashes.get(String(args[0])) ?? []), ...args.slice(1).map(String)]);
    if (command === 'WAITAOF') throw new Error('ERR unknown command WAITAOF');
    if (command === 'ZRANGE') return [];
    return 1;
  };
  const session: RedisSession = {
    call: (command, ...args) => Promise.resolve().then(() => run(command, ...args)),
    pipeline: (commands) => Promise.resolve(commands.map(([command, ...args]) => run(command, ...args))),
    evalScript: (_script, keys, args) => {
      const n = Number(args[0]);
      if (n <= fence) return Promise.resolve(ALREADY_APPLIED);
      const entries = hashes.get(String(keys[1])) ?? [];
      for (let i = 0; i < entries.length; i += 2) applied.set(entries[i] as string, entries[i + 1] as string);
      fence = n;
      return Promise.resolve(entries.length / 2);
    },
    close: () => Promise.resolve(),
  };
  return { connect: () => Promise.resolve(session), applied };
}

describe('two-phase sink freshness (redis committer on a fake server)', () => {
  it('observes at the fenced apply, once per key, with commit seconds from the barrier', async () => {
    const time = clock();
    const redis = fakeRedis();
    const metrics = new RecordingMetrics();
    const op = redisSink<number, { id: number }>({
      prefix: 'p',
      connect: redis.connect,
      log: () => undefined,
    }).createOperator();
    const context: OperatorContext = recordingOperatorContext('job', 'redis', metrics, time.now);
    await op.open?.(context, undefined);
    const t0 = time.now();
    await feed(op, upsert(1, 1, t0 - 300), upsert(2, 2, t0 - 200), upsert(1, 3, t0 - 100));
    time.advance(100);
    await op.snapshotState?.(1); // staged: invisible, nothing observed yet
    expect(metrics.observed(SINK_VISIBILITY_SECONDS)).toEqual([]);
    time.advance(900); // the checkpoint completes 0.9 s after the barrier
    await op.notifyCheckpointComplete?.(1);
    expect(redis.applied.size).toBe(2);
    // Key 1's last write (t0 − 100) is what became visible; its first write is not counted.
    expect(metrics.observed(SINK_VISIBILITY_SECONDS).sort()).toEqual([1.1, 1.2]);
    expect(metrics.observed(SINK_COMMIT_SECONDS)).toEqual([0.9]);
    expect(metrics.counts.get(SINK_RECORDS_COMMITTED)).toBe(2);
    await op.close?.();
  });
});
