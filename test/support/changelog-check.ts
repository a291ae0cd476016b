/**
 * What the Kafka sink chaos tests compare at the end: the committed records of the sink's
 * changelog topic (read marker by marker, `readTransactionalLog`) against the changelog oracle —
 * every table change exactly once, per id in LSN order, with its row — and the compacted view
 * (last record per key) against the projection oracle. See docs/sink-chaos-tests.md.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Kafka } from 'kafkajs';
import { expect } from 'vitest';
import type { WorkloadRecord } from '../../scripts/workload/generator.ts';
import type { ChangelogEntry } from '../../scripts/workload/oracle.ts';
import type { LoggedRecord } from './kafka-read.ts';
import { parsePosition } from '../../state/change-position.ts';

/** Compacted, as a changelog topic should be; nothing younger than an hour is compacted, so a test sees every record. */
export async function createChangelogTopic(kafka: Kafka, topic: string, partitions: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const configEntries = [
      { name: 'cleanup.policy', value: 'compact' },
      { name: 'min.compaction.lag.ms', value: '3600000' },
    ];
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions, configEntries }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

/** A record of the sink's topic: the order id (key), the commit-order position (`cdcflow.position` header), the row or null (tombstone). */
export interface Change {
  readonly id: number;
  readonly position: string;
  readonly row: unknown;
}

export function decodeChange(record: LoggedRecord): Change {
  const key = JSON.parse(record.key?.toString() ?? 'null') as { id?: unknown } | null;
  const position = record.headers['cdcflow.position'];
  if (typeof key?.id !== 'number' || position === undefined || parsePosition(position) === undefined)
    throw new Error(
      `undecodable record at ${record.partition}@${record.offset}: key ${record.key?.toString() ?? 'null'}, position ${String(position)}`,
    );
  return { id: key.id, position, row: record.value === null ? null : JSON.parse(record.value.toString()) };
}

export interface ChangelogVerdict {
  /** Table changes in the oracle, and the ids they cover. */
  readonly changes: number;
  readonly keys: number;
  readonly lost: string[];
  readonly duplicated: string[];
  readonly unexpected: string[];
  readonly wrongRow: string[];
  readonly outOfOrder: string[];
  readonly compacted: string[];
}

/** Every way the committed changelog differs from the changelog and projection oracles. */
export function judgeChangelog(
  log: readonly Change[],
  oracle: Map<number, ChangelogEntry[]>,
  projection: Map<number, unknown>,
): ChangelogVerdict {
  const want = new Map<string, ChangelogEntry>();
  for (const [id, list] of oracle) for (const entry of list) want.set(`${id}@${entry.position}`, entry);
  const seen = new Map<string, number>();
  const last = new Map<number, Change>();
  const v = {
    lost: [] as string[],
    duplicated: [] as string[],
    unexpected: [] as string[],
    wrongRow: [] as string[],
    outOfOrder: [] as string[],
    compacted: [] as string[],
  };
  for (const change of log) {
    const name = `${change.id}@${change.position}`;
    const count = (seen.get(name) ?? 0) + 1;
    seen.set(name, count);
    if (count === 2) v.duplicated.push(name);
    const expected = want.get(name);
    if (expected === undefined) v.unexpected.push(name);
    else if (!isDeepStrictEqual(change.row, expected.row))
      v.wrongRow.push(`${name}: ${JSON.stringify(change.row)} ≠ ${JSON.stringify(expected.row)}`);
    const previous = last.get(change.id);
    if (previous !== undefined && previous.position >= change.position)
      v.outOfOrder.push(`${name} after ${previous.position}`);
    last.set(change.id, change);
  }
  for (const name of want.keys()) if (!seen.has(name)) v.lost.push(name);
  for (const [id, row] of projection)
    if (!isDeepStrictEqual(last.get(id)?.row ?? null, row))
      v.compacted.push(`id ${id}: last ${JSON.stringify(last.get(id)?.row ?? null)}`);
  for (const [id, change] of last)
    if (change.row !== null && !projection.has(id))
      v.compacted.push(`id ${id}: live in the topic, absent from the projection`);
  return { changes: want.size, keys: oracle.size, ...v };
}

/** The workload as the topic holds it: per partition, the records in offset order. */
/** Fails with the first differences when the committed changelog is not exactly the oracle's. */
export function expectExactChangelog(verdict: ChangelogVerdict, committed: number): void {
  expect(verdict.lost.slice(0, 20), `lost (of ${verdict.lost.length})`).toEqual([]);
  expect(verdict.duplicated.slice(0, 20), `duplicated (of ${verdict.duplicated.length})`).toEqual([]);
  expect(verdict.unexpected.slice(0, 20), `unexpected (of ${verdict.unexpected.length})`).toEqual([]);
  expect(verdict.wrongRow.slice(0, 20), `wrong rows (of ${verdict.wrongRow.length})`).toEqual([]);
  expect(verdict.outOfOrder.slice(0, 20), `out of order (of ${verdict.outOfOrder.length})`).toEqual([]);
  expect(verdict.compacted.slice(0, 20), `compacted view (of ${verdict.compacted.length})`).toEqual([]);
  expect(committed).toBe(verdict.changes);
}

export function workloadByPartition(records: readonly WorkloadRecord[]): WorkloadRecord[][] {
  const partitions: WorkloadRecord[][] = [];
  for (const record of records) (partitions[record.partition] ??= []).push(record);
  return partitions;
}

/** Records of `b` missing from `a` (extra) and of `a` missing from `b`, by partition and offset. */
export function recordSetDifference(
  a: readonly LoggedRecord[],
  b: readonly LoggedRecord[],
): { extra: number; missing: number } {
  const names = (records: readonly LoggedRecord[]) => new Set(records.map((r) => `${r.partition}@${r.offset}`));
  const [inA, inB] = [names(a), names(b)];
  return { extra: [...inB].filter((n) => !inA.has(n)).length, missing: [...inA].filter((n) => !inB.has(n)).length };
}
