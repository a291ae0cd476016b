import { describe, expect, it } from 'vitest';
import { abortedFilterDefect } from '../../../../operators/sources/kafka/aborted-filter-check.ts';

type Input = Parameters<NonNullable<Parameters<typeof abortedFilterDefect>[0]>>[0];

/** kafkajs 2.2.4's algorithm, reduced: it trusts the broker's list to be sorted by first offset and enters one per message. */
function trustingFilter({ messages, abortedTransactions }: Input) {
  const remaining = [...abortedTransactions];
  const aborting = new Set<string>();
  return messages.filter((m) => {
    const next = remaining[0];
    if (next !== undefined && BigInt(m.offset) >= BigInt(next.firstOffset))
      aborting.add(remaining.shift()?.producerId ?? '');
    return !(m.batchContext.inTransaction && aborting.has(m.batchContext.producerId));
  });
}

describe('kafkajs aborted-transaction filter check', () => {
  it('names the defect of a filter that trusts the broker’s order', () => {
    expect(abortedFilterDefect(trustingFilter)).toMatch(/kept \["A","B"\]/);
  });

  it('passes the filter installed here (patched by scripts/patch-kafkajs.mjs)', () => {
    expect(abortedFilterDefect()).toBeUndefined();
  });
});
