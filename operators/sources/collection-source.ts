import type { StreamRecord } from '../operator.ts';
import type { PollResult, SourceDefinition, SourceReader, SourceSnapshot } from './source.ts';

export interface CollectionSourceOptions<T> {
  /** Event time for each element; without it records carry no timestamp. */
  readonly timestampOf?: (value: T) => number;
  /** @default 1000 */
  readonly batchSize?: number;
}

/**
 * A bounded source over an in-memory array, for tests and examples. Its position is the index of
 * the next element, so it checkpoints and restores like a real source. It has one split, read by
 * subtask 0; at parallelism > 1 the other subtasks end at once (keyed operators downstream still
 * run on every subtask, behind the keyed exchange).
 */
export function fromCollection<T>(values: readonly T[], options: CollectionSourceOptions<T> = {}): SourceDefinition<T> {
  const batchSize = options.batchSize ?? 1000;
  return {
    name: 'collection',
    splitOwner: () => 0,
    createReader: (context): SourceReader<T> => {
      if (context.subtaskIndex !== 0) return endedReader<T>();
      let next = 0;
      return {
        open: (restored: SourceSnapshot | undefined) => {
          next = Number(restored?.positions[0]?.position ?? 0);
          return Promise.resolve();
        },
        poll: (): Promise<PollResult<T>> => {
          if (next >= values.length) return Promise.resolve('end');
          const slice = values.slice(next, next + batchSize);
          next += slice.length;
          const records: StreamRecord<T>[] = slice.map((value) => ({
            value,
            timestamp: options.timestampOf?.(value),
          }));
          return Promise.resolve({ records, split: '0', bytes: slice.length * 64 });
        },
        snapshot: () => ({ positions: [{ split: '0', position: String(next) }] }),
        close: () => Promise.resolve(),
      };
    },
  };
}

function endedReader<T>(): SourceReader<T> {
  return {
    open: () => Promise.resolve(),
    poll: (): Promise<PollResult<T>> => Promise.resolve('end'),
    snapshot: () => ({ positions: [] }),
    close: () => Promise.resolve(),
  };
}
