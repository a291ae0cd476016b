import { afterEach, describe, expect, it } from 'vitest';
import { revenueWindowsJob, type Order, type OrderEvent, type RevenueRow } from '../../../../jobs/revenue-windows.ts';
import { collectSink, type SourceDefinition, type SourceReader, type StreamRecord } from '../../../../runtime/index.ts';
import { generateWorkload, type WorkloadRecord } from '../../../../scripts/workload/generator.ts';
import { revenueWindowOracle } from '../../../../scripts/workload/oracle.ts';
import { decodeWorkloadRecord } from '../../../support/workload-events.ts';
import { TempDirs, testEnvironment } from './harness.ts';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

/**
 * The workload's partitions as splits of one source, read round-robin `perPoll` records at a
 * time, as a Kafka consumer would; `consumed` records the order for the oracle.
 */
function workloadSource(
  records: readonly WorkloadRecord[],
  perPoll: number,
  consumed: WorkloadRecord[],
): SourceDefinition<OrderEvent> {
  const byPartition = new Map<number, WorkloadRecord[]>();
  for (const r of records) {
    if (r.event === null) continue; // tombstones: the Debezium source emits nothing for them
    let list = byPartition.get(r.partition);
    if (list === undefined) byPartition.set(r.partition, (list = []));
    list.push(r);
  }
  return {
    name: 'workload',
    createReader: (): SourceReader<OrderEvent> => {
      const queues = [...byPartition.entries()].map(([partition, list]) => ({ partition, list, next: 0 }));
      let turn = 0;
      return {
        open: () => Promise.resolve(),
        poll: () => {
          const live = queues.filter((q) => q.next < q.list.length);
          const queue = live[turn++ % Math.max(1, live.length)];
          if (queue === undefined) return Promise.resolve('end');
          const batch = queue.list.slice(queue.next, queue.next + perPoll);
          queue.next += batch.length;
          consumed.push(...batch);
          const out: StreamRecord<OrderEvent>[] = batch.map((r) => {
            const decoded = decodeWorkloadRecord<Order>(r);
            if (decoded.kind !== 'change') throw new Error(`record ${r.seq} did not decode as a change`);
            return { value: decoded.event, timestamp: decoded.event.source.tsMs };
          });
          return Promise.resolve({ records: out, split: String(queue.partition), bytes: 0 });
        },
        snapshot: () => ({ positions: queues.map((q) => ({ split: String(q.partition), position: String(q.next) })) }),
        close: () => Promise.resolve(),
      };
    },
  };
}

describe('jobs/revenue-windows.ts', () => {
  it('agrees with revenueWindowOracle on the reference workload: final sums, counts and late events', async () => {
    const records = [...generateWorkload({ keys: 1500, events: 15_000, seed: 7 })];
    const consumed: WorkloadRecord[] = [];
    const rows: RevenueRow[] = [];
    const late: OrderEvent[] = [];
    const env = testEnvironment(dirs.make(), { backend: 'rocksdb' });
    revenueWindowsJob(env, workloadSource(records, 100, consumed), {
      windows: collectSink(rows, { transactional: true }),
      late: collectSink(late, { transactional: true }),
    });
    await env.execute();

    const oracle = revenueWindowOracle(consumed);
    const final = new Map<string, RevenueRow>();
    for (const row of rows) {
      const id = `${row.windowStart}|${row.status}`;
      if ((final.get(id)?.updateCount ?? -1) < row.updateCount) final.set(id, row);
    }
    const engine = [...final.values()]
      .map((r) => ({
        windowStart: r.windowStart,
        windowEnd: r.windowEnd,
        status: r.status,
        sum: r.sum,
        count: r.count,
      }))
      .sort((a, b) => a.windowStart - b.windowStart || a.status.localeCompare(b.status));
    expect(engine).toEqual(oracle.windows);
    expect(late.map((e) => e.source.lsn).sort((a, b) => a - b)).toEqual(
      oracle.late.map((l) => l.lsn).sort((a, b) => a - b),
    );
    expect(oracle.late.length).toBeGreaterThan(50);
  }, 60_000);
});
