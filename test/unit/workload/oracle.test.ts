import { describe, expect, it } from 'vitest';
import { generateWorkload } from '../../../scripts/workload/generator.ts';
import type { WorkloadRecord } from '../../../scripts/workload/generator.ts';
import {
  RevenueWindowOracle,
  changelogOracle,
  countByOp,
  projectionOracle,
  revenueWindowOracle,
} from '../../../scripts/workload/oracle.ts';
import type { OracleRecord } from '../../../scripts/workload/oracle.ts';
import type { OrderEnvelope, OrderRow, OrderStatus } from '../../../scripts/workload/orders-model.ts';
import { positionParts, type ChangePosition } from '../../../state/change-position.ts';

const lsnOf = (position: ChangePosition): number => Number(positionParts(position).changeLsn);

type Spec = [
  partition: number,
  id: number,
  op: OrderEnvelope['op'] | 'tombstone',
  lsn: number,
  ts: number,
  status?: OrderStatus,
  amount?: string,
];

function row(id: number, status: OrderStatus, amount: string): OrderRow {
  return {
    id,
    customer_id: 1,
    status,
    amount,
    currency: 'EUR',
    shipping_address: '',
    notes: '',
    created_at: '',
    updated_at: '',
  };
}

/** Hand-written records: just the fields the oracles read, in consumption order. */
function records(specs: Spec[]): OracleRecord[] {
  return specs.map(([partition, id, op, lsn, ts, status = 'pending', amount = '0.00'], seq) => {
    if (op === 'tombstone') return { seq, partition, id, event: null };
    const image = row(id, status, amount);
    const source = { ts_ms: ts, lsn } as OrderEnvelope['source'];
    const event: OrderEnvelope = {
      op,
      before: op === 'c' || op === 'r' ? null : image,
      after: op === 'd' ? null : image,
      source,
      transaction: null,
      ts_ms: ts,
      ts_us: ts * 1000,
      ts_ns: ts * 1_000_000,
    };
    return { seq, partition, id, event };
  });
}

// Two partitions; windows [0, 60 s), [60 s, 120 s), [120 s, 180 s). Comments give the source
// watermark after each record: min over partitions of (max ts − 5 000 − 1).
const HAND = records([
  [0, 1, 'r', 10, 1_000, 'paid', '10.00'], //      s0  wm −∞ (p1 unseen)
  [1, 2, 'r', 10, 2_000, 'pending', '5.50'], //    s1  wm −4 001
  [0, 1, 'u', 20, 70_000, 'shipped', '10.00'], //  s2  wm −3 001
  [1, 2, 'u', 30, 100_000, 'paid', '7.25'], //     s3  wm 64 999
  [0, 1, 'u', 40, 3_000, 'delivered', '10.00'], // s4  on time: 59 999 + 30 000 > 64 999
  [0, 3, 'c', 50, 130_000, 'pending', '1.01'], //  s5  wm 94 999
  [1, 2, 'd', 60, 101_000], //                     s6  wm 95 999 (deletes move the watermark)
  [1, 2, 'tombstone', 60, 0], //                   s7
  [0, 3, 'u', 70, 5_000, 'paid', '2.00'], //       s8  late: 89 999 <= 95 999
  [0, 1, 'u', 40, 3_000, 'delivered', '10.00'], // s9  replay of s4, now late
]);

describe('projectionOracle', () => {
  it('keeps the row last in commit order per id and drops ids whose last event is a delete', () => {
    const projection = projectionOracle(HAND);
    expect([...projection.keys()].sort()).toEqual([1, 3]);
    expect(projection.get(1)).toMatchObject({ status: 'delivered' });
    expect(projection.get(3)).toMatchObject({ status: 'paid', amount: '2.00' });
  });

  it('does not care about order', () => {
    expect(projectionOracle([...HAND].reverse())).toEqual(projectionOracle(HAND));
  });
});

describe('changelogOracle', () => {
  it('lists every applied change per id in commit order, without replays or tombstones', () => {
    const changelog = changelogOracle(HAND);
    const lsns = Object.fromEntries(
      [...changelog].map(([id, list]) => [
        id,
        list.map((c) => (c.row === null ? `d${lsnOf(c.position)}` : lsnOf(c.position))),
      ]),
    );
    expect(lsns).toEqual({ 1: [10, 20, 40], 2: [10, 30, 'd60'], 3: [50, 70] }); // s9 replays LSN 40: no change
  });

  it('ends, per id, in the projection', () => {
    const workload = [...generateWorkload({ keys: 200, events: 3_000, duplicateFraction: 0.05, seed: 7 })];
    const last = new Map(
      [...changelogOracle(workload)].flatMap(([id, list]) => {
        const row = list.at(-1)?.row ?? null;
        return row === null ? [] : [[id, row] as const];
      }),
    );
    expect(last).toEqual(projectionOracle(workload));
  });
});

describe('revenueWindowOracle', () => {
  it('sums exactly per window and status, and counts late records', () => {
    const result = revenueWindowOracle(HAND, { partitions: 2 });
    expect(result.windows).toEqual([
      { windowStart: 0, windowEnd: 60_000, status: 'delivered', sum: '10.00', count: 1 },
      { windowStart: 0, windowEnd: 60_000, status: 'paid', sum: '10.00', count: 1 },
      { windowStart: 0, windowEnd: 60_000, status: 'pending', sum: '5.50', count: 1 },
      { windowStart: 60_000, windowEnd: 120_000, status: 'paid', sum: '7.25', count: 1 },
      { windowStart: 60_000, windowEnd: 120_000, status: 'shipped', sum: '10.00', count: 1 },
      { windowStart: 120_000, windowEnd: 180_000, status: 'pending', sum: '1.01', count: 1 },
    ]);
    expect(result.late.map((l) => l.seq)).toEqual([8, 9]);
    expect(result.watermark).toBe(95_999);
  });

  it('pushBatch judges a whole batch by the watermark before it, as the engine does', () => {
    const [first, ahead, behind] = records([
      [0, 1, 'c', 1, 100_000, 'paid', '1.00'], //  wm 94 999
      [0, 2, 'c', 2, 200_000, 'paid', '1.00'], //  wm 194 999 once pushed
      [0, 3, 'c', 3, 110_000, 'paid', '1.00'], //  late by record (149 999 <= 194 999), not by batch (94 999)
    ]) as [OracleRecord, OracleRecord, OracleRecord];
    const byRecord = new RevenueWindowOracle({ partitions: 1 });
    for (const r of [first, ahead, behind]) byRecord.push(r);
    expect(byRecord.result().late.map((l) => l.id)).toEqual([3]);
    const byBatch = new RevenueWindowOracle({ partitions: 1 });
    byBatch.pushBatch([first]);
    byBatch.pushBatch([ahead, behind]);
    expect(byBatch.result().late).toEqual([]);
    expect(byBatch.result().watermark).toBe(194_999);
  });

  it('counts late records per window they would have belonged to, and status', () => {
    const late = records([
      [0, 1, 'c', 1, 200_000, 'paid', '1.00'], //   wm 194 999
      [0, 2, 'u', 2, 10_000, 'paid', '1.00'], //    late for [0, 60 s)
      [0, 3, 'u', 3, 59_999, 'paid', '1.00'], //    late for [0, 60 s)
      [0, 4, 'u', 4, 60_000, 'paid', '1.00'], //    late for [60 s, 120 s)
      [0, 5, 'u', 5, 20_000, 'shipped', '1.00'], // late for [0, 60 s), another status
    ]);
    expect(revenueWindowOracle(late, { partitions: 1 }).lateCounts).toEqual([
      { windowStart: 0, windowEnd: 60_000, status: 'paid', lateCount: 2 },
      { windowStart: 0, windowEnd: 60_000, status: 'shipped', lateCount: 1 },
      { windowStart: 60_000, windowEnd: 120_000, status: 'paid', lateCount: 1 },
    ]);
    expect(revenueWindowOracle(HAND, { partitions: 2 }).lateCounts).toEqual([
      { windowStart: 0, windowEnd: 60_000, status: 'delivered', lateCount: 1 },
      { windowStart: 0, windowEnd: 60_000, status: 'paid', lateCount: 1 },
    ]);
  });

  it('is late exactly when window end − 1 + allowed lateness <= watermark', () => {
    const at = (maxTs: number) =>
      revenueWindowOracle(
        records([
          [0, 1, 'c', 1, maxTs, 'paid', '1.00'],
          [0, 2, 'c', 2, 59_999, 'paid', '1.00'],
        ]),
        { partitions: 1 },
      );
    expect(at(95_000).late).toHaveLength(1); // wm 89 999
    expect(at(94_999).late).toHaveLength(0); // wm 89 998
  });

  it('sums large volumes without float drift', () => {
    const many = records(Array.from({ length: 1_000 }, (_, i): Spec => [0, i, 'c', i, 10, 'paid', '0.10']));
    expect(revenueWindowOracle(many, { partitions: 1 }).windows[0]?.sum).toBe('100.00');
  });

  it('gives the same result for generator order and a batched per-partition interleaving', () => {
    const workload = [
      ...generateWorkload({ keys: 2_000, events: 12_000, lateFraction: 0.02, duplicateFraction: 0.02 }),
    ];
    const inOrder = revenueWindowOracle(workload);
    const byPartition = Array.from({ length: 6 }, (_, p) => workload.filter((r) => r.partition === p));
    const interleaved: WorkloadRecord[] = [];
    // Batches of 300 a partition: ~18 s of event time, the size of a kafkajs fetch round.
    for (let offset = 0; interleaved.length < workload.length; offset += 300) {
      for (const part of byPartition) interleaved.push(...part.slice(offset, offset + 300));
    }
    const other = revenueWindowOracle(interleaved);
    expect(other.windows).toEqual(inOrder.windows);
    expect(other.late.map((l) => l.seq).sort()).toEqual(inOrder.late.map((l) => l.seq).sort());
    // Late by construction ⇔ late by the watermark.
    const flagged = workload.filter((r) => r.late && r.event?.op !== 'd').map((r) => r.seq);
    expect(inOrder.late.map((l) => l.seq)).toEqual(flagged);
    expect(flagged.length).toBeGreaterThan(50);
  });
});

describe('countByOp', () => {
  it('counts ops, tombstones, duplicates and late records', () => {
    const workload = [...generateWorkload({ keys: 100, events: 1_000, duplicateFraction: 0.1 })];
    const counts = countByOp(workload);
    const originals = workload.filter((r) => !r.duplicate && r.event !== null);
    expect(counts.r).toBeGreaterThanOrEqual(100);
    expect(originals.length).toBe(1_000);
    expect(counts.tombstones).toBe(originals.filter((r) => r.event?.op === 'd').length);
    expect(counts.r + counts.c + counts.u + counts.d).toBe(1_000 + counts.duplicates);
    expect(counts.late).toBe(workload.filter((r) => r.late).length);
  });
});
