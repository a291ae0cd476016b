import { describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../../../operators/change-event.ts';
import type { Output, StreamRecord } from '../../../../operators/operator.ts';
import { decodeDebeziumJson } from '../../../../operators/sources/kafka/debezium-json.ts';
import type { JsonRow } from '../../../../operators/sources/kafka/raw-message.ts';
import {
  transactionConsistent,
  type TransactionInput,
} from '../../../../operators/transform/transaction-consistent.ts';
import { fixtureMessages } from '../../../fixtures/debezium/fixtures.ts';
import { recordingOperatorContext } from '../../../support/operator-context.ts';

type Input = TransactionInput<JsonRow>;

/** The real capture: changes (2 snapshot rows, then transactions 749 (3 events), 750, 751 (truncate), 752) and their markers. */
function realInputs(): { changes: Input[]; markers: Input[] } {
  const changes: Input[] = [];
  for (const m of fixtureMessages('precise-schemas')) {
    const d = decodeDebeziumJson<JsonRow>(m);
    if (d.kind === 'change') changes.push({ kind: 'change', event: d.event });
  }
  const markers: Input[] = [];
  for (const m of fixtureMessages('precise-schemas-transaction-topic')) {
    const d = decodeDebeziumJson<JsonRow>(m);
    if (d.kind === 'transaction') markers.push({ kind: 'marker', marker: d.marker });
  }
  return { changes, markers };
}

const records = (...values: Input[]): StreamRecord<Input>[] => values.map((value) => ({ value, timestamp: 0 }));
const ids = (events: readonly ChangeEvent<JsonRow>[]) => events.map((e) => `${e.op}${String(e.after?.['id'] ?? '')}`);

describe('transactionConsistent (real connector output)', () => {
  it('holds a transaction back across a barrier and releases it whole, after a restore too', async () => {
    const { changes, markers } = realInputs();
    const [snap1, snap2, c3, c4, u1] = changes as [Input, Input, Input, Input, Input];
    const [begin749, end749] = markers as [Input, Input];
    const emitted: ChangeEvent<JsonRow>[] = [];
    const out: Output<ChangeEvent<JsonRow>> = { emit: (v) => void emitted.push(v), emitSide: () => undefined };

    const first = transactionConsistent<JsonRow>();
    await first.open?.(recordingOperatorContext('tx-test', 'tx'), undefined);
    await first.processBatch(records(snap1, snap2, begin749, c3, c4), out);
    // Snapshot rows have no transaction: through at once. Transaction 749 is incomplete: held.
    expect(ids(emitted)).toEqual(['r1', 'r2']);
    const snapshot = await first.snapshotState?.(1); // the barrier: nothing of 749 before it

    const second = transactionConsistent<JsonRow>();
    await second.open?.(recordingOperatorContext('tx-test', 'tx'), JSON.parse(JSON.stringify(snapshot)));
    emitted.length = 0;
    await second.processBatch(records(c4, u1), out); // c4 again: a redelivery, counted once
    expect(emitted).toEqual([]);
    await second.processBatch(records(end749), out);
    expect(ids(emitted)).toEqual(['c3', 'c4', 'u1']); // in one call: one checkpoint, in transaction order
  });

  it('END before the events, and tables outside `collections` not waited for', async () => {
    const { changes, markers } = realInputs();
    const end750 = markers[3] as Input;
    const c5 = changes[5] as Input;
    const emitted: ChangeEvent<JsonRow>[] = [];
    const out: Output<ChangeEvent<JsonRow>> = { emit: (v) => void emitted.push(v), emitSide: () => undefined };
    const op = transactionConsistent<JsonRow>();
    await op.open?.(recordingOperatorContext('tx-test', 'tx'), undefined);
    await op.processBatch(records(end750), out);
    expect(emitted).toEqual([]);
    await op.processBatch(records(c5), out);
    expect(ids(emitted)).toEqual(['c5']);

    const none = transactionConsistent<JsonRow>({ collections: ['public.other'] });
    await none.open?.(recordingOperatorContext('tx-test', 'tx2'), undefined);
    emitted.length = 0;
    await none.processBatch(records(markers[1] as Input), out); // END 749 counts 0 events of public.other
    expect(emitted).toEqual([]);
  });

  it('real change events carry the transaction block', () => {
    const { changes } = realInputs();
    const tx = changes.map((c) => (c.kind === 'change' ? c.event.transaction : undefined));
    expect(tx[0]).toBeUndefined();
    expect(tx[2]).toMatchObject({
      id: expect.stringMatching(/^\d+:\d+$/) as string,
      totalOrder: 1,
      dataCollectionOrder: 1,
    });
  });
});
