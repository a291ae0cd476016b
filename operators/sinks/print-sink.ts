import type { SinkDefinition } from './sink.ts';

export interface PrintSinkOptions<T> {
  /** @default JSON.stringify */
  readonly format?: (value: T) => string;
  /** @default console.log */
  readonly write?: (line: string) => void;
}

/** Writes every record as a line; at-least-once (replays after a restore print again). */
export function printSink<T>(options: PrintSinkOptions<T> = {}): SinkDefinition<T> {
  const format = options.format ?? ((value: T) => JSON.stringify(value));
  const write = options.write ?? ((line: string) => console.log(line));
  return {
    name: 'print',
    createOperator: () => ({
      processBatch(batch) {
        for (const record of batch) write(format(record.value));
      },
    }),
  };
}
