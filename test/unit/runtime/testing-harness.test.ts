/**
 * `cdcflow/testing` drives the shipped jobs' graphs in memory: the projection and the revenue
 * windows with a late event, as a user's own unit test would.
 */
import { describe, expect, it } from 'vitest';
import { ordersProjectionJob, type Order } from '../../../jobs/orders-projection.ts';
import { revenueWindowsJob, type OrderEvent, type RevenueRow } from '../../../jobs/revenue-windows.ts';
import type { TableChange } from '../../../runtime/index.ts';
import { changeEvent, collectSink, fromCollection, testJob } from '../../../runtime/testing.ts';

const order = (id: number, status: string, amount = '10.00'): Order => ({ id, status, amount });

describe('cdcflow/testing', () => {
  it('runs the projection to the end over in-memory change events', async () => {
    const job = testJob();
    const rows: TableChange<number, Order>[] = [];
    const events = [
      changeEvent('c', order(1, 'new'), { tsMs: 1_000 }),
      changeEvent('u', order(1, 'paid'), { tsMs: 2_000 }),
      changeEvent('c', order(2, 'new'), { tsMs: 3_000 }),
      changeEvent('d', order(2, 'new'), { tsMs: 4_000 }),
    ];
    ordersProjectionJob(
      job.env,
      { topic: 'unused', groupId: 'unused', bounded: true },
      collectSink(rows),
      fromCollection(events),
    );
    const result = await job.run();
    expect(result.restarts).toBe(0);
    expect(rows.map((r) => (r.kind === 'upsert' ? `${r.key}:${r.row.status}` : `${r.key}:deleted`))).toEqual([
      '1:new',
      '1:paid',
      '2:new',
      '2:deleted',
    ]);
  });

  it('fires windows at the end of input and routes a too-late event to the side output', async () => {
    const job = testJob();
    const windows: RevenueRow[] = [];
    const late: OrderEvent[] = [];
    const events = [
      changeEvent('c', order(1, 'paid', '5.00'), { tsMs: 10_000 }),
      changeEvent('c', order(2, 'paid', '7.50'), { tsMs: 20_000 }),
      changeEvent('c', order(3, 'paid', '1.00'), { tsMs: 200_000 }), // moves the watermark past window [0, 60 s) + lateness
      changeEvent('c', order(4, 'paid', '9.99'), { tsMs: 30_000 }), // too late for [0, 60 s)
    ];
    revenueWindowsJob(job.env, fromCollection(events, { batchSize: 1 }), {
      windows: collectSink(windows),
      late: collectSink(late),
    });
    await job.run();
    const first = windows.filter((w) => w.windowStart === 0).at(-1);
    expect(first?.sum).toBe('12.50');
    expect(late.map((e) => e.after?.['id'])).toEqual([4]);
  });
});
