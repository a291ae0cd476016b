import type { KeyedStateAccess } from '../keyed-state-access.ts';
import type { OperatorContext, StreamRecord } from '../operator.ts';

/** The keyed state of an operator that was opened after keyBy; a clear error otherwise. */
export function requireKeyedState(context: OperatorContext, operator: string): KeyedStateAccess {
  if (context.keyedState === undefined) {
    throw new Error(`${operator} needs keyed state: call it on a keyed stream (stream.keyBy(...).${operator}(...))`);
  }
  return context.keyedState;
}

/** Loads the state of every key in the batch with one read, so per-record access is synchronous. */
export async function prefetchBatch(state: KeyedStateAccess, batch: readonly StreamRecord<unknown>[]): Promise<void> {
  const keys = new Set<unknown>();
  for (const record of batch) keys.add(record.key);
  await state.prefetch([...keys]);
}
