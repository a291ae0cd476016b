import type { Operator } from '../operator.ts';

export function filterOperator<T>(predicate: (value: T) => boolean): Operator<T, T> {
  return {
    processBatch(batch, out) {
      for (const record of batch) if (predicate(record.value)) out.emit(record.value, record.timestamp);
    },
  };
}
