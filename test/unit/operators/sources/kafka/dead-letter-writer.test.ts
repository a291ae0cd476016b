import { describe, expect, it } from 'vitest';
import { deadLetterMessageBytes, type DeadLetterMessage } from '../../../../../operators/sources/kafka/dead-letter.ts';
import { chunksUnder } from '../../../../../operators/sources/kafka/dead-letter-writer.ts';

const letter = (bytes: number): DeadLetterMessage => ({
  key: null,
  value: Buffer.alloc(bytes),
  headers: { 'cdcflow.dlq.reason': 'x' },
});

describe('chunksUnder (issue 10, defect 3)', () => {
  it('splits a burst of 8 × 200 KB letters into sends that each stay under a 1 MB topic limit', () => {
    const chunks = chunksUnder(
      Array.from({ length: 8 }, () => letter(200 * 1024)),
      1_047_564,
    );
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.flat()).toHaveLength(8);
    for (const chunk of chunks)
      expect(chunk.reduce((sum, m) => sum + deadLetterMessageBytes(m), 0)).toBeLessThanOrEqual(1_047_564);
  });

  it('keeps small letters in one send', () => {
    expect(chunksUnder([letter(10), letter(10), letter(10)], 1_000_000)).toHaveLength(1);
  });
});
