import type { Operator } from '../operator.ts';
import type { RecordDeadLetters } from '../record-dead-letters.ts';
import { userCodeFailed } from './user-code.ts';

export function mapOperator<In, Out>(fn: (value: In) => Out): Operator<In, Out> {
  let deadLetters: RecordDeadLetters | undefined;
  return {
    open(context) {
      deadLetters = context.deadLetters;
    },
    processBatch(batch, out) {
      for (const record of batch) {
        let mapped: Out;
        try {
          mapped = fn(record.value);
        } catch (error) {
          userCodeFailed(deadLetters, record, error, 'map');
          continue;
        }
        out.emit(mapped, record.timestamp);
      }
    },
  };
}
