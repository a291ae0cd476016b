import type { Operator } from '../operator.ts';
import type { RecordDeadLetters } from '../record-dead-letters.ts';
import { userCodeFailed } from './user-code.ts';

export function flatMapOperator<In, Out>(fn: (value: In) => Iterable<Out>): Operator<In, Out> {
  let deadLetters: RecordDeadLetters | undefined;
  return {
    open(context) {
      deadLetters = context.deadLetters;
    },
    processBatch(batch, out) {
      for (const record of batch) {
        // Collected first: a function that throws halfway emits nothing for its record.
        let values: Out[];
        try {
          values = [...fn(record.value)];
        } catch (error) {
          userCodeFailed(deadLetters, record, error, 'flatMap');
          continue;
        }
        for (const value of values) out.emit(value, record.timestamp);
      }
    },
  };
}
