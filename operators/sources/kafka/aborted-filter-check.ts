/**
 * kafkajs 2.2.4 lets read_committed consumers deliver records of aborted transactions when the
 * transactions ended in another order than they began (its filter trusts the broker's list to be
 * sorted by first offset; the broker sorts it by abort). cdcflow patches the filter on install
 * (scripts/patch-kafkajs.mjs). A source reading read_committed checks the loaded filter once,
 * so an unpatched install fails at start with the fix instead of emitting aborted records.
 */
import { createRequire } from 'node:module';
import { CdcflowError } from '../../../state/errors.ts';

interface FilterMessage {
  readonly offset: string;
  readonly key: Buffer | null;
  readonly batchContext: { readonly producerId: string; readonly inTransaction: boolean };
}
type AbortedFilter = (input: {
  messages: FilterMessage[];
  abortedTransactions: { firstOffset: string; producerId: string }[];
}) => FilterMessage[];

export class KafkaClientDefectError extends CdcflowError {
  constructor(detail: string) {
    super(
      `the installed kafkajs would deliver records of aborted transactions to read_committed consumers (${detail}). ` +
        'Run `node node_modules/cdcflow/scripts/patch-kafkajs.mjs` (or `node scripts/patch-kafkajs.mjs` in a cdcflow checkout), or reinstall so its postinstall step runs.',
      { domain: 'user', retriable: false },
    );
  }
}

let verdict: string | undefined | null = null; // null: not checked yet

/** Why the loaded kafkajs filter is wrong, or undefined when it keeps aborted records out. */
export function abortedFilterDefect(filter?: AbortedFilter): string | undefined {
  const loaded =
    filter ?? (createRequire(import.meta.url)('kafkajs/src/consumer/filterAbortedMessages.js') as AbortedFilter);
  const record = (offset: number, producerId: string): FilterMessage => ({
    offset: String(offset),
    key: Buffer.from('k'),
    batchContext: { producerId, inTransaction: true },
  });
  // A begins, B begins, C begins; B commits, C aborts, A aborts: the broker lists C before A.
  const kept = loaded({
    messages: [record(0, 'A'), record(1, 'B'), record(2, 'C')],
    abortedTransactions: [
      { firstOffset: '2', producerId: 'C' },
      { firstOffset: '0', producerId: 'A' },
    ],
  }).map((m) => m.batchContext.producerId);
  return kept.length === 1 && kept[0] === 'B'
    ? undefined
    : `kept ${JSON.stringify(kept)} of producers A, B, C where only B committed`;
}

/** Throws `KafkaClientDefectError` when the loaded kafkajs filter leaks aborted records (checked once per process). */
export function assertAbortedTransactionsFiltered(): void {
  if (verdict === null) verdict = abortedFilterDefect();
  if (verdict !== undefined) throw new KafkaClientDefectError(verdict);
}
