/**
 * The generator's events against a topic captured from the real Debezium 3.6.1.Final connector
 * (test/fixtures/debezium/interleaved-snapshot.json): same envelope and `source` fields in the same
 * order, same types, same sequence format and snapshot markers.
 */
import { describe, expect, it } from 'vitest';
import { generateWorkload } from '../../../scripts/workload/generator.ts';
import { loadDebeziumFixture } from '../../support/debezium-fixtures.ts';

type Obj = Record<string, unknown>;
const fixture = loadDebeziumFixture('interleaved-snapshot.json');
const real = fixture.records.flatMap((r) => (r.value === null ? [] : [r.value]));
const generated = [...generateWorkload({ keys: 200, events: 2_000 })].flatMap((r) =>
  r.event === null ? [] : [JSON.parse(r.value?.toString() ?? 'null') as Obj],
);

const shape = (value: Obj): [string, string][] =>
  Object.entries(value).map(([k, v]) => [k, v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v]);
const first = (events: Obj[], op: string): Obj => events.find((e) => e['op'] === op) as Obj;

describe('generator output has the real connector shape', () => {
  for (const op of ['r', 'u', 'c', 'd']) {
    it(`envelope and source of op ${op}: same fields, order and types`, () => {
      const mine = first(generated, op);
      const theirs = first(real, op);
      expect(theirs, `the fixture has an op ${op}`).toBeDefined();
      // `before`: null or an object in both; the fixture table has other columns than orders.
      const envelope = (e: Obj) => shape(e).map(([k, t]) => [k, k === 'before' || k === 'after' ? 'row' : t]);
      expect(envelope(mine)).toEqual(envelope(theirs));
      const source = (e: Obj) => shape(e['source'] as Obj).filter(([k]) => k !== 'name');
      expect(source(mine)).toEqual(source(theirs));
    });
  }

  it('sequence, snapshot markers and timestamps as the connector writes them', () => {
    const sequence = /^\[(null|"\d+"),"\d+"\]$/;
    for (const events of [real, generated]) {
      const sources = events.map((e) => e['source'] as Obj);
      expect(sources.every((s) => sequence.test(s['sequence'] as string))).toBe(true);
      const markers = events.filter((e) => e['op'] === 'r').map((e) => (e['source'] as Obj)['snapshot']);
      expect([markers[0], markers[1], markers.at(-1)]).toEqual(['first', 'true', 'last']);
      expect(events.filter((e) => e['op'] !== 'r').every((e) => (e['source'] as Obj)['snapshot'] === 'false')).toBe(
        true,
      );
      const snapshotSequence = (events.find((e) => e['op'] === 'r')?.['source'] as Obj)['sequence'] as string;
      expect(JSON.parse(snapshotSequence)[0]).toBeNull();
      const firstStreamed = (events.find((e) => e['op'] !== 'r')?.['source'] as Obj)['sequence'] as string;
      expect(JSON.parse(firstStreamed)[0]).toBeNull(); // a fresh connector has no last commit yet
      expect(sources.every((s) => s['ts_us'] === (s['ts_ms'] as number) * 1000 + ((s['ts_us'] as number) % 1000))).toBe(
        true,
      );
      expect(events.every((e) => e['transaction'] === null)).toBe(true);
    }
  });
});
