import type { Operator } from '../operator.ts';
import type { RecordDeadLetters } from '../record-dead-letters.ts';
import { userCodeFailed } from './user-code.ts';

export function filterOperator<T>(predicate: (value: T) => boolean): Operator<T, T> {
  let deadLetters: RecordDeadLetters | undefined;
  return {
    open(context) {
      deadLetters = context.deadLetters;
    },
    processBatch(batch, out) {
      for (const record of batch) {
        let kept: boolean;
        try {
          kept = predicate(record.value);
        } catch (error) {
          userCodeFailed(deadLetters, record, error, 'filter');
          continue;
        }
        if (kept) out.emit(record.value, record.timestamp);
      }
    },
  };
}
