import { describe, expect, it } from 'vitest';
import { decimalSum } from '../../../../runtime/index.ts';
import { formatDecimal, parseDecimal } from '../../../../operators/window/decimal-sum.ts';

describe('decimalSum', () => {
  it('sums decimal strings exactly', () => {
    const fn = decimalSum<string>((s) => s);
    let acc = fn.createAccumulator();
    // 0.1 + 0.2 is the classic float trap; a million cents must not drift either.
    for (const amount of ['0.10', '0.2', '99.99', '-5', '1000000.01']) acc = fn.add(amount, acc);
    expect(fn.getResult(acc)).toEqual({ sum: '1000095.30', count: 5 });
    expect(fn.getResult(fn.merge?.(acc, acc) ?? acc)).toEqual({ sum: '2000190.60', count: 10 });
  });

  it('parses and formats at any scale, refusing digits it would have to round', () => {
    expect(parseDecimal('12.5', 2)).toBe(1250n);
    expect(parseDecimal('-0.05', 2)).toBe(-5n);
    expect(formatDecimal(-5n, 2)).toBe('-0.05');
    expect(formatDecimal(1234n, 0)).toBe('1234');
    expect(formatDecimal(7n, 3)).toBe('0.007');
    expect(() => parseDecimal('1.234', 2)).toThrow(RangeError);
    expect(() => parseDecimal('abc', 2)).toThrow(RangeError);
  });
});
