/**
 * The upstream side of a watermark-carrying repartition topic: records stamped with the task's
 * watermark before them, watermark-only control records at each checkpoint inside the same
 * transaction (to every partition once after opening, then only where the watermark advanced),
 * the watermark stored in the checkpoint and restored, and a fresh task without event time refused.
 */
import { describe, expect, it } from 'vitest';
import type { Operator, OperatorContext, StreamRecord } from '../../../../operators/operator.ts';
import type { ChangeEvent } from '../../../../runtime/index.ts';
import { carryingSink, type Outgoing } from '../../../../runtime/group/repartition-sink.ts';

type Row = { status: string };
const event = (status: string) => ({ after: { status } }) as unknown as ChangeEvent<Row>;
const context = { jobName: 'rev.by-status.orders-1', uid: 'sink', subtaskIndex: 0, parallelism: 1 } as OperatorContext;
const DISCARD = { emit: () => undefined, emitSide: () => undefined };

function harness(upstreamTasks?: number) {
  const written: string[] = [];
  const inner: Operator<Outgoing<Row>, never> = {
    processBatch: (batch: readonly StreamRecord<Outgoing<Row>>[]) => {
      for (const { value: v } of batch)
        written.push(
          `${v.kind === 'change' ? (v.event.after as Row).status : 'control'}@${v.partition} ${v.carried.origin} ${v.carried.watermark}${v.carried.origins === undefined ? '' : ` of ${v.carried.origins}`}`,
        );
    },
    snapshotState: (id: number) => ({ pending: [id] }),
  };
  const sink = carryingSink<Row>({
    inner: { name: 'repartition', createOperator: () => inner },
    partitions: 3,
    ...(upstreamTasks === undefined ? {} : { upstreamTasks }),
    partitionOf: (e) => ({ paid: 0, shipped: 1 })[(e.after as Row).status] ?? 2,
    noWatermark: () => new Error('no watermark'),
  });
  return { written, operator: sink.createOperator() };
}

const records = (...statuses: string[]) => statuses.map((s) => ({ value: event(s), timestamp: 0 }));

describe('repartition sink carrying watermarks', () => {
  it('stamps records, announces −∞ then only advanced watermarks, and stores its watermark', async () => {
    const { written, operator } = harness();
    await operator.open?.(context, undefined);
    // Before any record: every partition learns this origin exists, at −∞.
    expect(await operator.snapshotState?.(1)).toEqual({ pending: [1], carriedWatermark: '-Infinity' });
    expect(written.splice(0)).toEqual([0, 1, 2].map((p) => `control@${p} rev.by-status.orders-1 -Infinity`));
    await operator.processBatch(records('paid'), DISCARD);
    await operator.onWatermark?.(5_000, DISCARD);
    await operator.processBatch(records('shipped'), DISCARD);
    expect(await operator.snapshotState?.(2)).toEqual({ pending: [2], carriedWatermark: 5_000 });
    expect(written.splice(0)).toEqual([
      'paid@0 rev.by-status.orders-1 -Infinity',
      'shipped@1 rev.by-status.orders-1 5000',
      'control@0 rev.by-status.orders-1 5000',
      'control@2 rev.by-status.orders-1 5000',
    ]);
    // Nothing advanced: nothing to say (a quiet upstream lets the downstream's idleness leave it out).
    await operator.snapshotState?.(3);
    expect(written).toEqual([]);
  });

  it('a restored task resumes from the stored watermark and tells every partition again', async () => {
    const { written, operator } = harness(4);
    await operator.open?.(context, { pending: [], carriedWatermark: 42_000 });
    await operator.processBatch(records('paid'), DISCARD);
    await operator.snapshotState?.(7);
    expect(written).toEqual([
      'paid@0 rev.by-status.orders-1 42000 of 4',
      'control@1 rev.by-status.orders-1 42000 of 4',
      'control@2 rev.by-status.orders-1 42000 of 4',
    ]);
  });

  it('a fresh task that wrote records without any watermark (no event time upstream) fails its checkpoint', async () => {
    const { operator } = harness();
    await operator.open?.(context, undefined);
    await operator.processBatch(records('paid'), DISCARD);
    await expect(Promise.resolve().then(() => operator.snapshotState?.(1))).rejects.toThrow('no watermark');
  });
});
