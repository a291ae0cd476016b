import { describe, expect, it } from 'vitest';
import {
  OutputTag,
  TumblingEventTimeWindows,
  decimalSum,
  type ChangeEvent,
  type DataStream,
} from '../../../runtime/index.ts';
import { JobHarness, changeEvent } from '../../../runtime/testing.ts';

interface Order {
  id: number;
  status: string;
  amount: string;
}

const LATE = new OutputTag<Order>('late-orders');

function pipeline(input: DataStream<ChangeEvent<Order>>) {
  const table = input.keyBy((e) => e.key?.['id'] as number).upsert();
  const revenue = input
    .flatMap((e) => (e.after === null ? [] : [e.after]))
    .keyBy((o) => o.status)
    .window(TumblingEventTimeWindows.of(60_000))
    .sideOutputLateData(LATE)
    .aggregate(decimalSum((o) => o.amount));
  return { table, revenue, late: revenue.getSideOutput(LATE) };
}

describe('JobHarness', () => {
  it('runs a pipeline on scripted change events, watermarks and late events', async () => {
    const harness = new JobHarness<ChangeEvent<Order>>()
      .send(changeEvent('c', { id: 1, status: 'paid', amount: '10.00' }, { tsMs: 1_000 }))
      .send(changeEvent('c', { id: 2, status: 'paid', amount: '5.50' }, { tsMs: 30_000 }))
      .advanceWatermark(60_000) // the window [0, 60 s) fires
      .send(changeEvent('u', { id: 1, status: 'paid', amount: '12.00' }, { tsMs: 2_000 })) // late
      .send(changeEvent('c', { id: 3, status: 'paid', amount: '1.00' }, { tsMs: 61_000 }));
    const out = await harness.run(pipeline);
    expect(out.revenue.map((r) => [r.window.start, r.result.sum])).toEqual([
      [0, '15.50'],
      [60_000, '1.00'],
    ]);
    expect(out.late).toEqual([{ id: 1, status: 'paid', amount: '12.00' }]);
    const latest = new Map(out.table.map((c) => [c.key, c]));
    expect(latest.get(1)).toMatchObject({ kind: 'upsert', row: { amount: '12.00' } });
    expect(latest.size).toBe(3);
  });

  it('asks for an event time when the element has none', () => {
    expect(() => new JobHarness<number>().send(1)).toThrow(/event time/);
  });
});
