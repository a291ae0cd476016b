import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateWorkload } from '../../../scripts/workload/generator.ts';
import type { WorkloadRecord } from '../../../scripts/workload/generator.ts';
import { envelopePosition } from '../../../scripts/workload/commit-position.ts';
import { kafkaPartition, murmur2 } from '../../../scripts/workload/murmur2.ts';
import { ORDER_STATUSES, centsToDecimal, decimalToCents } from '../../../scripts/workload/orders-model.ts';
import { WorkloadOptionsError, resolveWorkloadOptions } from '../../../scripts/workload/workload-options.ts';

function digest(records: Iterable<WorkloadRecord>): string {
  const hash = createHash('sha256');
  for (const r of records)
    hash
      .update(`${r.partition}|`)
      .update(r.key)
      .update(r.value ?? 'null');
  return hash.digest('hex');
}

const SMALL = { keys: 500, events: 6_000, duplicateFraction: 0.02, lateFraction: 0.02 } as const;
const records = [...generateWorkload(SMALL)];

describe('generateWorkload', () => {
  it('is deterministic: the same seed gives the same bytes, another seed different ones', () => {
    const options = { keys: 200, events: 2_000, duplicateFraction: 0.05 };
    expect(digest(generateWorkload(options))).toBe(digest(generateWorkload(options)));
    expect(digest(generateWorkload({ ...options, seed: 2 }))).not.toBe(digest(generateWorkload(options)));
  });

  it('starts with the snapshot: one r per key, the last marked "last"', () => {
    const snapshot = records.slice(0, SMALL.keys).filter((r) => !r.duplicate);
    expect(snapshot.every((r) => r.event?.op === 'r')).toBe(true);
    const reads = records.filter((r) => r.event?.op === 'r' && !r.duplicate);
    expect(new Set(reads.map((r) => r.id)).size).toBe(SMALL.keys);
    expect(reads.at(-1)?.event?.source.snapshot).toBe('last');
  });

  it('mixes 20 % c / 75 % u / 5 % d after the snapshot, within tolerance', () => {
    const stream = records.filter((r) => r.event !== null && r.event.op !== 'r' && !r.duplicate);
    expect(stream).toHaveLength(SMALL.events - SMALL.keys);
    const share = (op: string): number => stream.filter((r) => r.event?.op === op).length / stream.length;
    expect(share('c')).toBeCloseTo(0.2, 1);
    expect(share('u')).toBeCloseTo(0.75, 1);
    expect(share('d')).toBeCloseTo(0.05, 1);
  });

  it('emits what Debezium emits: commit order in source.sequence, interleaved change LSNs, a snapshot taken under load', () => {
    const originals = records
      .filter((r) => r.event !== null && !r.duplicate)
      .map((r) => r.event as NonNullable<WorkloadRecord['event']>);
    const snapshot = originals.slice(0, SMALL.keys);
    const snapshotLsn = snapshot[0]?.source.lsn as number;
    expect(new Set(snapshot.map((e) => e.source.sequence))).toEqual(
      new Set([JSON.stringify([null, String(snapshotLsn)])]),
    );
    expect(snapshot.map((e) => e.source.snapshot).slice(0, 2)).toEqual(['first', 'true']);
    const stream = originals.slice(SMALL.keys);
    const positions = stream.map(envelopePosition);
    expect(positions.filter((p, i) => i > 0 && p <= (positions[i - 1] as string))).toEqual([]);
    // Interleaved transactions: the change LSN goes backwards; in-flight ones at the snapshot sit below it.
    expect(stream.filter((e, i) => i > 0 && e.source.lsn < (stream[i - 1]?.source.lsn ?? 0)).length).toBeGreaterThan(
      SMALL.events / 50,
    );
    expect(stream.filter((e) => e.source.lsn < snapshotLsn).length).toBe(3);
    expect(JSON.parse(stream[0]?.source.sequence ?? '')[0]).toBeNull(); // a fresh connector: no last commit yet
    // Changes of one transaction share txId and the last-commit part of their sequence.
    const byTx = new Map<number, Set<string>>();
    for (const e of stream)
      byTx.set(e.source.txId, (byTx.get(e.source.txId) ?? new Set()).add(JSON.parse(e.source.sequence)[0]));
    expect([...byTx.values()].every((commits) => commits.size === 1)).toBe(true);
    expect([...byTx.keys()].length).toBeLessThan(stream.length);
  });

  it('follows every delete with a tombstone for the same key on the same partition', () => {
    const deletes = records.flatMap((r, i) =>
      r.event?.op === 'd' && !r.duplicate ? [[r, records[i + 1]] as const] : [],
    );
    expect(deletes.length).toBeGreaterThan(0);
    const bad = deletes.filter(
      ([d, next]) => next?.value !== null || !next.key.equals(d.key) || next.partition !== d.partition,
    );
    expect(bad).toEqual([]);
  });

  it('moves status forward only, and never touches a deleted id again', () => {
    const deleted = new Set<number>();
    const violations: number[] = [];
    for (const r of records) {
      if (r.event === null || r.duplicate) continue;
      if (deleted.has(r.id)) violations.push(r.seq);
      if (r.event.op === 'd') deleted.add(r.id);
      const { before, after } = r.event;
      if (
        before !== null &&
        after !== null &&
        ORDER_STATUSES.indexOf(after.status) < ORDER_STATUSES.indexOf(before.status)
      ) {
        violations.push(r.seq);
      }
    }
    expect(violations).toEqual([]);
  });

  it("keeps each key on one partition, chosen like Kafka's default partitioner", () => {
    const partitionOf = new Map<number, number>();
    const violations = records.filter((r) => {
      const ok = (partitionOf.get(r.id) ?? r.partition) === r.partition && r.partition === kafkaPartition(r.key, 6);
      partitionOf.set(r.id, r.partition);
      return !ok;
    });
    expect(violations).toEqual([]);
    expect(new Set(partitionOf.values()).size).toBe(6);
  });

  it('re-emits duplicates byte-identical and later; marks late events older by lateByMs', () => {
    const duplicates = records.filter((r) => r.duplicate);
    expect(duplicates.length / records.length).toBeCloseTo(0.02, 1);
    const bySeq = new Map(records.filter((r) => !r.duplicate).map((r) => [`${r.event?.source.lsn}|${r.id}`, r]));
    const badDuplicates = duplicates.filter((d) => {
      const original = bySeq.get(`${d.event?.source.lsn}|${d.id}`);
      return original === undefined || !original.value?.equals(d.value ?? Buffer.alloc(0)) || d.seq <= original.seq;
    });
    expect(badDuplicates).toEqual([]);
    const late = records.filter((r) => r.late && !r.duplicate);
    expect(late.length / records.length).toBeCloseTo(0.02, 1);
    expect(late.filter((r) => (r.event?.ts_ms ?? 0) - (r.event?.source.ts_ms ?? 0) < 300_000)).toEqual([]);
  });

  it('bounds out-of-orderness of on-time events by the jitter within a partition', () => {
    const maxTs = new Map<number, number>();
    let worst = 0;
    for (const r of records) {
      if (r.event === null || r.late || r.duplicate) continue;
      const ts = r.event.source.ts_ms;
      worst = Math.max(worst, (maxTs.get(r.partition) ?? ts) - ts);
      maxTs.set(r.partition, Math.max(ts, maxTs.get(r.partition) ?? ts));
    }
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThanOrEqual(2_000);
  });

  it('makes an update with both images about 1.3 KB', () => {
    const update = records.find((r) => r.event?.op === 'u');
    expect(update?.value?.length).toBeGreaterThan(1_200);
    expect(update?.value?.length).toBeLessThan(1_700);
    expect(JSON.parse(update?.value?.toString() ?? '')).toEqual(update?.event);
  });
});

describe('workload helpers', () => {
  it("murmur2 matches Kafka's test vectors", () => {
    const vectors: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [text, hash] of vectors) expect(murmur2(Buffer.from(text))).toBe(hash);
  });

  it('converts decimals exactly', () => {
    expect(decimalToCents('99.99')).toBe(9999n);
    expect(decimalToCents('5.5')).toBe(550n);
    expect(decimalToCents('-0.01')).toBe(-1n);
    expect(centsToDecimal(1234567n)).toBe('12345.67');
    expect(centsToDecimal(-5)).toBe('-0.05');
    expect(() => decimalToCents('1.234')).toThrow(/at most 2/);
  });

  it('validates options with actionable messages', () => {
    expect(() => resolveWorkloadOptions({ keys: 10, events: 5 })).toThrow(WorkloadOptionsError);
    expect(() => resolveWorkloadOptions({ lateFraction: 2 })).toThrow(/lateFraction/);
    expect(resolveWorkloadOptions().partitions).toBe(6);
  });
});
