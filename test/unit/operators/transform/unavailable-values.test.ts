import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { unavailableValueMatcher } from '../../../../operators/transform/unavailable-values.ts';

const P = '__debezium_unavailable_value';

describe('unavailable-value placeholders', () => {
  const matcher = unavailableValueMatcher();

  it('finds every per-type form Debezium writes with the JSON converter', () => {
    const bytes = Buffer.from(P);
    const md5 = createHash('md5').update(bytes).digest('hex');
    const row = {
      id: 1,
      text: P,
      bytea: bytes.toString('base64'),
      textArray: [P],
      byteaArray: [bytes.toString('base64')],
      intArray: [...bytes],
      uuidArray: [
        `${md5.slice(0, 8)}-${md5.slice(8, 12)}-3${md5.slice(13, 16)}-${((parseInt(md5.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${md5.slice(18, 20)}-${md5.slice(20, 32)}`,
      ],
      hstore: { [P]: P },
      hstoreJson: JSON.stringify({ [P]: P }),
      untouched: 'a real value',
      list: ['a', 'b'],
      nothing: null,
    };
    expect(matcher.columnsIn(row)).toEqual([
      'text',
      'bytea',
      'textArray',
      'byteaArray',
      'intArray',
      'uuidArray',
      'hstore',
      'hstoreJson',
    ]);
  });

  it('honours a configured placeholder, including the hex: form', () => {
    expect(
      unavailableValueMatcher('hex:00ff').columnsIn({ a: Buffer.from([0, 255]).toString('base64'), b: P }),
    ).toEqual(['a']);
    expect(unavailableValueMatcher('??').columnsIn({ a: '??', b: P })).toEqual(['a']);
  });
});
