import type { KeyedStateAccess } from '../keyed-state-access.ts';
import type { OperatorContext } from '../operator.ts';

/** The keyed state of an operator that was opened after keyBy; a clear error otherwise. */
export function requireKeyedState(context: OperatorContext, operator: string): KeyedStateAccess {
  if (context.keyedState === undefined) {
    throw new Error(`${operator} needs keyed state: call it on a keyed stream (stream.keyBy(...).${operator}(...))`);
  }
  return context.keyedState;
}
