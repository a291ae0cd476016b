import { describe, expect, it } from 'vitest';
import { DLQ_HEADERS, deadLetter, toDeadLetterMessage } from '../../../../../operators/sources/kafka/dead-letter.ts';
import { message } from './messages.ts';

describe('toDeadLetterMessage', () => {
  it('keeps the original bytes and says where they came from and why in headers', () => {
    const original = message(Buffer.from([0xff, 0x00]));
    const letter = deadLetter(original, 'undecodable', 'value is not valid UTF-8 (2 bytes)');
    const out = toDeadLetterMessage(letter);
    expect(out.key).toBe(original.key);
    expect(out.value).toBe(original.value);
    expect(out.headers).toEqual({
      [DLQ_HEADERS.topic]: 'cdc.ecommerce.orders',
      [DLQ_HEADERS.partition]: '3',
      [DLQ_HEADERS.offset]: '1017',
      [DLQ_HEADERS.reason]: 'value is not valid UTF-8 (2 bytes)',
      [DLQ_HEADERS.errorKind]: 'undecodable',
      [DLQ_HEADERS.timestampMs]: '1700000000123',
    });
    expect(Object.keys(out.headers)).toContain('cdcflow.dlq.error-kind');
  });

  it('keeps null key and value as null', () => {
    const out = toDeadLetterMessage(deadLetter(message(null, null), 'malformed', 'x'));
    expect([out.key, out.value]).toEqual([null, null]);
  });
});
