import type { Operator } from '../operator.ts';

export function mapOperator<In, Out>(fn: (value: In) => Out): Operator<In, Out> {
  return {
    processBatch(batch, out) {
      for (const record of batch) out.emit(fn(record.value), record.timestamp);
    },
  };
}
