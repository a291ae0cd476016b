/**
 * Group mode's owner epoch in the Redis and Elasticsearch sinks, on fakes: a newer owner's claim
 * refuses every later write or commit of an older one (the real servers: the sink contract's zombie case).
 */
import { describe, expect, it } from 'vitest';
import type { Operator } from '../../../../operators/operator.ts';
import type { BulkClient } from '../../../../operators/sinks/elasticsearch/bulk-client.ts';
import { tableChangeAction } from '../../../../operators/sinks/elasticsearch/document-action.ts';
import { elasticsearchSink } from '../../../../operators/sinks/elasticsearch/elasticsearch-sink.ts';
import type { EpochFenceStore, FenceVersion } from '../../../../operators/sinks/elasticsearch/epoch-fence.ts';
import { isOwnershipLost, registerOwnerEpoch, type OwnerEpoch } from '../../../../operators/sinks/owner-epoch.ts';
import { CLAIM_SCRIPT, EPOCH_FENCED } from '../../../../operators/sinks/redis/fenced-batch.ts';
import type { RedisSession } from '../../../../operators/sinks/redis/redis-session.ts';
import { redisSink } from '../../../../operators/sinks/redis/redis-sink.ts';
import type { TableChange } from '../../../../operators/table-change.ts';
import { streamPosition } from '../../../../state/change-position.ts';
import { recordingOperatorContext } from '../../../support/operator-context.ts';

type Change = TableChange<number, { id: number; status: string }>;
let lsn = 0;
const upsert = (id: number, status: string): Change => ({
  kind: 'upsert',
  key: id,
  row: { id, status },
  previous: null,
  position: streamPosition(0, ++lsn),
  sourceTsMs: 0,
});
const noOutput = { emit: () => undefined, emitSide: () => undefined };
const write = (op: Operator<Change, never>, ...changes: Change[]) =>
  op.processBatch(
    changes.map((value) => ({ value, timestamp: undefined })),
    noOutput,
  );

/** Opens `sink` as the task of `job` under owner epoch `epoch` (the group runner registers it before open). */
async function openAs(
  op: Operator<Change, never>,
  job: string,
  epoch: number,
  restored?: unknown,
): Promise<Operator<Change, never>> {
  const unregister = registerOwnerEpoch(job, { epoch, owner: `owner ${epoch}` });
  try {
    await op.open?.(recordingOperatorContext(job, 'sink'), restored);
  } finally {
    unregister();
  }
  return op;
}

function memoryFences(): EpochFenceStore & { writes: number } {
  const docs = new Map<string, FenceVersion>();
  let seqNo = 0;
  return {
    writes: 0,
    read: (instance) => Promise.resolve(docs.get(instance)),
    write(instance, owner: OwnerEpoch, expected) {
      const current = docs.get(instance);
      if (current?.seqNo !== expected?.seqNo) return Promise.resolve(false);
      docs.set(instance, { epoch: owner.epoch, seqNo: ++seqNo, primaryTerm: 1 });
      this.writes += 1;
      return Promise.resolve(true);
    },
    close: () => Promise.resolve(),
  };
}

describe('elasticsearch sink: owner epoch (fakes)', () => {
  it('after a newer owner claims, the older owner sends no bulk request and the claim is never lowered', async () => {
    const sent: string[] = [];
    const client: BulkClient = {
      bulk: (lines) => {
        for (const l of lines) if ('id' in l) sent.push(`${String(l['id'])}:${String(l['status'])}`);
        return Promise.resolve({
          ok: true,
          items: lines
            .filter((l) => 'index' in l)
            .map(() => ({ status: 201, errorType: undefined, errorReason: undefined })),
        });
      },
      close: () => Promise.resolve(),
    };
    const fences = memoryFences();
    const sink = () =>
      elasticsearchSink<Change>({
        node: 'http://unused',
        client,
        fenceStore: fences,
        toAction: tableChangeAction('orders'),
      });
    const job = 'es-epoch-job';
    const old = await openAs(sink().createOperator(), job, 1);
    await write(old, upsert(1, 'old'));
    await old.snapshotState?.(1);
    const fresh = await openAs(sink().createOperator(), job, 2);
    await write(fresh, upsert(1, 'new'));
    await fresh.snapshotState?.(2);
    await write(old, upsert(1, 'zombie'), upsert(2, 'zombie'));
    await expect(old.snapshotState?.(2)).rejects.toSatisfy(isOwnershipLost);
    expect(sent).toEqual(['1:old', '1:new']);
    await expect(openAs(sink().createOperator(), job, 1)).rejects.toSatisfy(isOwnershipLost);
    expect(fences.writes).toBe(2);
  });

  it('outside group mode reads no fence', async () => {
    const fences = memoryFences();
    const client: BulkClient = {
      bulk: () => Promise.resolve({ ok: true, items: [{ status: 201, errorType: undefined, errorReason: undefined }] }),
      close: () => Promise.resolve(),
    };
    const op = elasticsearchSink<Change>({
      node: 'http://unused',
      client,
      fenceStore: { ...fences, read: () => Promise.reject(new Error('read')) },
      toAction: tableChangeAction('orders'),
    }).createOperator();
    await op.open?.(recordingOperatorContext('es-no-group', 'sink'), undefined);
    await write(op, upsert(1, 'a'));
    await op.snapshotState?.(1);
    expect(fences.writes).toBe(0);
  });
});

describe('redis sink: owner epoch (fake session)', () => {
  it('claims in recover, sends its epoch with every apply, and maps a fenced apply to OwnershipLostError', async () => {
    let epochKey = 0;
    const evals: (string | number)[][] = [];
    const session: RedisSession = {
      call: (command, ...args) => {
        if (command === 'GET' && String(args[0]).endsWith(':epoch')) return Promise.resolve(String(epochKey));
        if (command === 'ZRANGE' || command === 'SCAN') return Promise.resolve(command === 'SCAN' ? ['0', []] : []);
        if (command === 'CONFIG') return Promise.resolve(['proto-max-bulk-len', '1000000']);
        return Promise.reject(new Error(`unknown command ${command}`)); // WAITAOF: treated as absent
      },
      pipeline: (commands) => Promise.resolve(commands.map(() => 1)),
      evalScript: (script, _keys, args) => {
        if (script === CLAIM_SCRIPT) {
          const ours = Number(args[0]);
          if (epochKey > ours) return Promise.resolve(epochKey);
          epochKey = ours;
          return Promise.resolve(0);
        }
        evals.push([...args]);
        return Promise.resolve(args[2] !== '' && Number(args[2]) !== epochKey ? EPOCH_FENCED : 1);
      },
      close: () => Promise.resolve(),
    };
    const sink = () =>
      redisSink<number, { id: number; status: string }>({
        prefix: 'p',
        connect: () => Promise.resolve(session),
        log: () => undefined,
        retry: { commitAttempts: 1 },
      });
    const job = 'redis-epoch-job';
    const old = await openAs(sink().createOperator(), job, 1);
    expect(epochKey).toBe(1);
    await write(old, upsert(1, 'old'));
    await old.snapshotState?.(1);
    await old.notifyCheckpointComplete?.(1);
    expect(evals[0]?.slice(1)).toEqual(['1@e1', 1]);
    await write(old, upsert(1, 'zombie'));
    await old.snapshotState?.(2);
    await openAs(sink().createOperator(), job, 2);
    expect(epochKey).toBe(2);
    await expect(old.notifyCheckpointComplete?.(2)).rejects.toSatisfy(isOwnershipLost);
    await write(old, upsert(2, 'zombie'));
    await expect(old.snapshotState?.(3)).rejects.toSatisfy(isOwnershipLost); // refused before staging
    await expect(openAs(sink().createOperator(), job, 1)).rejects.toSatisfy(isOwnershipLost);
    expect(epochKey).toBe(2);
  });
});
