import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_PARALLELISM,
  keyGroupFor,
  keyGroupRangeFor,
  subtaskForKeyGroup,
} from '../../../state/key-groups.ts';
import { decodeKey, encodeKey } from '../../../state/key-encoder.ts';
import { murmur3 } from '../../../state/murmur3.ts';
import { StateError } from '../../../state/errors.ts';

describe('murmur3', () => {
  it('matches the reference MurmurHash3_x86_32 vectors', () => {
    expect(murmur3(Buffer.alloc(0))).toBe(0);
    expect(murmur3(Buffer.from('hello'))).toBe(0x248bfa47);
    expect(murmur3(Buffer.from('abc'))).toBe(0xb3dd93fa);
    expect(murmur3(Buffer.from('The quick brown fox jumps over the lazy dog'))).toBe(0x2e4ff723);
  });
});

describe('key groups', () => {
  it('ranges tile 0..max-1 contiguously for any parallelism, and invert with subtaskForKeyGroup', () => {
    for (const parallelism of [1, 2, 3, 7, 128]) {
      let next = 0;
      for (let i = 0; i < parallelism; i++) {
        const range = keyGroupRangeFor(i, parallelism);
        expect(range.start).toBe(next);
        for (let g = range.start; g <= range.end; g++) expect(subtaskForKeyGroup(g, parallelism)).toBe(i);
        next = range.end + 1;
      }
      expect(next).toBe(DEFAULT_MAX_PARALLELISM);
    }
  });

  it('assigns keys stably and spreads them', () => {
    const counts = new Array<number>(DEFAULT_MAX_PARALLELISM).fill(0);
    for (let i = 0; i < 12_800; i++) counts[keyGroupFor(encodeKey({ id: i }))]! += 1;
    expect(keyGroupFor(encodeKey('order-1'))).toBe(keyGroupFor(encodeKey('order-1')));
    expect(Math.min(...counts)).toBeGreaterThan(50);
    expect(Math.max(...counts)).toBeLessThan(150);
  });

  it('rejects bad parallelism with a user error', () => {
    expect(() => keyGroupRangeFor(2, 2)).toThrow(StateError);
    expect(() => keyGroupRangeFor(0, 0)).toThrow(/parallelism/);
    expect(() => keyGroupRangeFor(0, 200, 128)).toThrow(/maxParallelism/);
  });
});

describe('canonical key encoding', () => {
  it('is independent of property order and distinguishes types', () => {
    expect(encodeKey({ a: 1, b: 'x' }).equals(encodeKey({ b: 'x', a: 1 }))).toBe(true);
    expect(encodeKey(1).equals(encodeKey('1'))).toBe(false);
    expect(encodeKey(1).equals(encodeKey(1n))).toBe(false);
    expect(encodeKey(0).equals(encodeKey(-0))).toBe(true);
    expect(encodeKey(['a', 'b']).equals(encodeKey(['ab']))).toBe(false);
    expect(encodeKey(null).equals(encodeKey(undefined))).toBe(false);
  });

  it('round-trips every supported type', () => {
    const values: unknown[] = [
      'héllo',
      42,
      -1.5,
      2n ** 70n,
      true,
      false,
      null,
      undefined,
      new Date(1_700_000_000_000),
      new Uint8Array([0, 255]),
      [1, 'a', [null]],
      { tenant: 't1', id: 7, nested: { z: [1n] } },
    ];
    for (const value of values) expect(decodeKey(encodeKey(value))).toEqual(value);
  });

  it('rejects keys it cannot encode canonically', () => {
    expect(() => encodeKey(new Map())).toThrow(/cannot use a Map as a state key/);
    expect(() => encodeKey({ f: () => 1 })).toThrow(StateError);
  });
});
