import { describe, expect, it } from 'vitest';
import {
  canonicalDecimal,
  canonicalTimestamp,
  commonKind,
  compareKeys,
  compareSorted,
  normalizeValue,
  type ReconcileRow,
} from '../../../runtime/reconcile/index.ts';

async function* rows(list: readonly ReconcileRow[]): AsyncGenerator<ReconcileRow> {
  for (const row of list) yield row;
}
const row = (id: number, ...values: (string | null)[]): ReconcileRow => ({ key: [String(id)], values });
const spec = {
  keyKinds: ['integer'] as const,
  columns: ['amount', 'at', 'status'],
  columnKinds: ['numeric', 'timestamp', 'text'] as const,
};

describe('reconcile: normalising values', () => {
  it('reads decimals by value, not by spelling', () => {
    expect(canonicalDecimal('99.90')).toBe('99.9');
    expect(canonicalDecimal('-0026588.24')).toBe('-26588.24');
    expect(canonicalDecimal('-0.00')).toBe('0');
    expect(canonicalDecimal('5.')).toBe('5');
    expect(canonicalDecimal('1234')).toBe('1234');
    expect(canonicalDecimal('MTIzNA==')).toBeUndefined();
    expect(normalizeValue('MTIzNA==', 'numeric')).toBe('MTIzNA==');
  });

  it('reads timestamps as instants whatever the offset or spelling', () => {
    const utc = '2026-12-04T09:00:00.123400Z';
    expect(canonicalTimestamp('2026-12-04 09:00:00.1234+00')).toBe(utc);
    expect(canonicalTimestamp('2026-12-04T10:00:00.1234+01:00')).toBe(utc);
    expect(canonicalTimestamp('2026-12-04T09:00:00.1234Z')).toBe(utc);
    expect(canonicalTimestamp('2026-12-04 04:00:00.1234-05')).toBe(utc);
    expect(canonicalTimestamp('yesterday')).toBeUndefined();
  });

  it('picks the more specific kind when the two sides store a column differently', () => {
    expect(commonKind('numeric', 'text')).toBe('numeric');
    expect(commonKind('text', 'timestamp')).toBe('timestamp');
    expect(commonKind('integer', 'numeric')).toBe('numeric');
    expect(normalizeValue('EUR ', 'char')).toBe('EUR');
    expect(normalizeValue('{"b":1,"a":2}', 'json')).toBe(normalizeValue('{"a": 2, "b": 1}', 'json'));
  });

  it('orders integer keys numerically and text keys by bytes', () => {
    expect(compareKeys(['9'], ['10'], ['integer'])).toBeLessThan(0);
    expect(compareKeys(['-5'], ['3'], ['integer'])).toBeLessThan(0);
    expect(compareKeys(['Z'], ['a'], ['text'])).toBeLessThan(0);
    expect(compareKeys(['1', 'b'], ['1', 'a'], ['integer', 'text'])).toBeGreaterThan(0);
  });
});

describe('reconcile: comparing two ordered row streams', () => {
  it('counts missing, extra and differing rows, with samples', async () => {
    const source = [
      row(1, '10.00', '2026-01-01 00:00:00+00', 'paid'),
      row(2, '-5.50', null, 'new'),
      row(4, '1', null, 'x'),
      row(6, '7.1', null, 'y'),
    ];
    const sink = [
      row(1, '10', '2026-01-01T00:00:00Z', 'paid'),
      row(2, '-5.5', null, 'shipped'),
      row(3, '0', null, 'z'),
      row(6, '7.10', null, 'y'),
    ];
    const result = await compareSorted(rows(source), rows(sink), spec);
    expect(result).toMatchObject({
      sourceRows: 4,
      sinkRows: 4,
      matching: 2,
      missing: 1,
      extra: 1,
      differing: 1,
      differingByColumn: { status: 1 },
    });
    expect(result.samples.missing).toEqual([['4']]);
    expect(result.samples.extra).toEqual([['3']]);
    expect(result.samples.differing).toEqual([
      { key: ['2'], columns: [{ column: 'status', source: 'new', sink: 'shipped' }] },
    ]);
  });

  it('treats NULL and a value as different, and two NULLs as equal', async () => {
    const result = await compareSorted(
      rows([row(1, null, null, 'a'), row(2, '1', null, null)]),
      rows([row(1, null, null, 'a'), row(2, null, null, null)]),
      spec,
    );
    expect(result.differing).toBe(1);
    expect(result.matching).toBe(1);
  });

  it('handles one side empty', async () => {
    expect(await compareSorted(rows([row(1, '1', null, 'a')]), rows([]), spec)).toMatchObject({ missing: 1, extra: 0 });
    expect(await compareSorted(rows([]), rows([row(1, '1', null, 'a')]), spec)).toMatchObject({ missing: 0, extra: 1 });
  });

  it('keeps at most `samples` samples however many rows differ', async () => {
    const source = Array.from({ length: 50 }, (_, i) => row(i, '1', null, 'a'));
    const result = await compareSorted(rows(source), rows([]), { ...spec, samples: 3 });
    expect(result.missing).toBe(50);
    expect(result.samples.missing).toHaveLength(3);
  });

  it('refuses a stream that is not ordered by key', async () => {
    await expect(compareSorted(rows([row(2, '1', null, 'a'), row(1, '1', null, 'a')]), rows([]), spec)).rejects.toThrow(
      /not strictly ordered/,
    );
  });
});
