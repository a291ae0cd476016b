/**
 * Exact sum and count of a decimal column, for Debezium's `decimal.handling.mode=string`
 * (`"99.99"`): amounts are summed as bigint units of 10^-scale, never as floats.
 *
 * ```ts
 * keyed.window(TumblingEventTimeWindows.of(60_000)).aggregate(decimalSum((e) => e.after.amount))
 * // → WindowResult<K, { sum: '12345.67', count: 42 }>
 * ```
 */
import type { AggregateFunction } from './window-functions.ts';

export interface DecimalSum {
  /** Exact decimal text with `scale` fraction digits, e.g. `"12345.67"`. */
  readonly sum: string;
  readonly count: number;
}

export interface DecimalAccumulator {
  readonly units: bigint;
  readonly count: number;
}

/** @param scale fraction digits of the column; an amount with more is an error, never rounded. @default 2 */
export function decimalSum<T>(
  amountOf: (value: T) => string,
  scale = 2,
): AggregateFunction<T, DecimalAccumulator, DecimalSum> {
  if (!Number.isSafeInteger(scale) || scale < 0)
    throw new RangeError(`decimalSum scale must be a whole number >= 0, got ${scale}`);
  return {
    createAccumulator: () => ({ units: 0n, count: 0 }),
    add: (value, acc) => ({ units: acc.units + parseDecimal(amountOf(value), scale), count: acc.count + 1 }),
    getResult: (acc) => ({ sum: formatDecimal(acc.units, scale), count: acc.count }),
    merge: (a, b) => ({ units: a.units + b.units, count: a.count + b.count }),
  };
}

const DECIMAL = /^([-+]?)(\d+)(?:\.(\d*))?$/;

/** `"99.9"` at scale 2 → 9990n. */
export function parseDecimal(text: string, scale: number): bigint {
  const match = DECIMAL.exec(text.trim());
  const fraction = match?.[3] ?? '';
  if (match === null || fraction.length > scale)
    throw new RangeError(`"${text}" is not a decimal with at most ${scale} fraction digits`);
  const units = BigInt(`${match[2] ?? '0'}${fraction.padEnd(scale, '0')}`);
  return match[1] === '-' ? -units : units;
}

/** 9990n at scale 2 → `"99.90"`. */
export function formatDecimal(units: bigint, scale: number): string {
  const sign = units < 0n ? '-' : '';
  const digits = (units < 0n ? -units : units).toString().padStart(scale + 1, '0');
  return scale === 0 ? `${sign}${digits}` : `${sign}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}
