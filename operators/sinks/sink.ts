import type { Operator } from '../operator.ts';

/** What `stream.sinkTo(...)` takes. A sink is an operator with no main output. */
export interface SinkDefinition<T> {
  readonly name: string;
  createOperator(): Operator<T, never>;
}
