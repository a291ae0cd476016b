import type { Operator } from '../operator.ts';

export function flatMapOperator<In, Out>(fn: (value: In) => Iterable<Out>): Operator<In, Out> {
  return {
    processBatch(batch, out) {
      for (const record of batch) for (const value of fn(record.value)) out.emit(value, record.timestamp);
    },
  };
}
