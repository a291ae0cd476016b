import { describe, expect, it } from 'vitest';
import {
  DLQ_HEADERS,
  deadLetter,
  deadLetterMessageBytes,
  fitDeadLetterMessage,
  toDeadLetterMessage,
} from '../../../../../operators/sources/kafka/dead-letter.ts';
import { message } from './messages.ts';

describe('toDeadLetterMessage', () => {
  it('keeps the original bytes and says where they came from and why in headers', () => {
    const original = message(Buffer.from([0xff, 0x00]));
    const letter = deadLetter(original, 'undecodable', 'value is not valid UTF-8 (2 bytes)');
    const out = toDeadLetterMessage(letter, () => 1_700_000_000_999);
    expect(out.key).toBe(original.key);
    expect(out.value).toBe(original.value);
    expect(out.headers).toEqual({
      [DLQ_HEADERS.topic]: 'cdc.ecommerce.orders',
      [DLQ_HEADERS.partition]: '3',
      [DLQ_HEADERS.offset]: '1017',
      [DLQ_HEADERS.key]: '{"id":42}',
      [DLQ_HEADERS.stage]: 'decode',
      [DLQ_HEADERS.reason]: 'value is not valid UTF-8 (2 bytes)',
      [DLQ_HEADERS.errorKind]: 'undecodable',
      [DLQ_HEADERS.errorClass]: 'DecodeError',
      [DLQ_HEADERS.timestampMs]: '1700000000123',
      [DLQ_HEADERS.deadLetteredAtMs]: '1700000000999',
    });
    expect(Object.keys(out.headers)).toContain('cdcflow.dlq.error-kind');
  });

  it('keeps null key and value as null', () => {
    const out = toDeadLetterMessage(deadLetter(message(null, null), 'malformed', 'x'));
    expect([out.key, out.value]).toEqual([null, null]);
  });
});

describe('fitDeadLetterMessage (issue 10, defect 3)', () => {
  it('truncates a value over the limit and records its original size; a message within the limit is untouched', () => {
    const big = toDeadLetterMessage(
      deadLetter(message(Buffer.alloc(3_000_000, 0x61)), 'too-large', 'record is 3000000 bytes'),
    );
    const fitted = fitDeadLetterMessage(big, 1_000_000);
    expect(deadLetterMessageBytes(fitted)).toBeLessThanOrEqual(1_000_000);
    expect(fitted.value?.length).toBeGreaterThan(990_000);
    expect(fitted.headers[DLQ_HEADERS.originalValueBytes]).toBe('3000000');
    const small = toDeadLetterMessage(deadLetter(message('{}'), 'malformed', 'x'));
    expect(fitDeadLetterMessage(small, 1_000_000)).toBe(small);
  });
});
