/**
 * The Postgres sink's client-side value checks are one-sided: they may only say `write` for values
 * Postgres surely accepts (or types they do not model) and refuse only what is certain; anything
 * unusual is asked of Postgres. A wrong `write` costs a transaction rewrite; a wrong refusal would
 * dead-letter a good row, so the certain refusals are few.
 */
import { describe, expect, it } from 'vitest';
import { valueCheck, type ColumnInfo } from '../../../../operators/sinks/postgres/value-checks.ts';

const col = (type: string, notNull = false, isEnum = false): ColumnInfo => ({ type, notNull, isEnum });
const verdicts = (type: string, values: readonly unknown[], notNull = false) =>
  values.map((v) => valueCheck('c', col(type, notNull))(v));

describe('postgres sink value checks', () => {
  it('numeric(p,s): plain decimals that fit are written, anything else is asked', () => {
    expect(verdicts('numeric(12,2)', ['12.50', '-0.5', '.5', 1234.5, '9999999999.99', 12n])).toEqual([
      'write',
      'write',
      'write',
      'write',
      'write',
      'write',
    ]);
    expect(
      verdicts('numeric(12,2)', ['twelve euros', '1e400', '99999999999', ' 12.5 ', 'NaN', Number.NaN, 1e12, '', '.']),
    ).toEqual(Array(9).fill('ask'));
    expect(verdicts('numeric', ['123456789012345678901234567890.5'])).toEqual(['write']);
  });

  it('integers: in range written, out of range or not digits asked', () => {
    expect(verdicts('bigint', [1, -5, '123456789012345678', 9007199254740991])).toEqual([
      'write',
      'write',
      'write',
      'write',
    ]);
    expect(verdicts('bigint', ['abc', 1.5, '1234567890123456789', ' 1'])).toEqual(Array(4).fill('ask'));
    expect(verdicts('integer', [2147483647, 2147483648, '1234567890'])).toEqual(['write', 'ask', 'ask']);
    expect(verdicts('smallint', [32767, 32768])).toEqual(['write', 'ask']);
  });

  it('timestamps: ISO with a real calendar date written, the rest asked', () => {
    expect(
      verdicts('timestamp with time zone', [
        '2024-05-01T12:00:00.123Z',
        '2024-02-29 23:59:59+02',
        '2024-05-01',
        new Date(),
      ]),
    ).toEqual(Array(4).fill('write'));
    expect(
      verdicts('timestamp with time zone', [
        'yesterday-ish',
        'now',
        '2023-02-29',
        '2024-13-01',
        '2024-05-01T24:00:00Z',
        1700000000,
      ]),
    ).toEqual(Array(6).fill('ask'));
  });

  it('certain refusals: NULL into NOT NULL, a NUL character anywhere', () => {
    expect(valueCheck('status', col('text', true))(null)).toEqual({
      sqlState: '23502',
      message: 'null value in column "status" violates not-null constraint',
    });
    expect(valueCheck('notes', col('text'))(null)).toBe('write');
    expect(valueCheck('notes', col('text'))('a\u0000b')).toMatchObject({ sqlState: '22021' });
  });

  it('text lengths, enums, json, uuid and unmodelled types', () => {
    expect(verdicts('character varying(3)', ['abc', 'abcd'])).toEqual(['write', 'ask']);
    expect(valueCheck('s', col('order_status', false, true))('paid')).toBe('ask');
    expect(verdicts('jsonb', [{ a: 1 }, '{"a":1}'])).toEqual(['write', 'ask']);
    expect(verdicts('uuid', ['123e4567-e89b-12d3-a456-426614174000', 'nope'])).toEqual(['write', 'ask']);
    expect(verdicts('point', ['(1,2)', 'junk'])).toEqual(['write', 'write']);
  });
});
