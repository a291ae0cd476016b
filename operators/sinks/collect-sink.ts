import type { SinkDefinition } from './sink.ts';

/**
 * Collects records into an array, for tests and examples. Records only become visible when the
 * checkpoint containing them completes, like a two-phase sink, so a test can observe exactly
 * what a transactional sink would show; `onEnd` flushes the rest when a bounded job finishes.
 */
export function collectSink<T>(target: T[], options: { transactional?: boolean } = {}): SinkDefinition<T> {
  const transactional = options.transactional ?? false;
  return {
    name: 'collect',
    createOperator: () => {
      let open: T[] = [];
      const prepared = new Map<number, T[]>();
      return {
        processBatch(batch) {
          for (const record of batch) (transactional ? open : target).push(record.value);
        },
        snapshotState(checkpointId) {
          prepared.set(checkpointId, open);
          open = [];
          return undefined;
        },
        notifyCheckpointComplete(checkpointId) {
          for (const [id, values] of prepared) {
            if (id <= checkpointId) {
              target.push(...values);
              prepared.delete(id);
            }
          }
        },
        close() {
          for (const values of prepared.values()) target.push(...values);
          target.push(...open);
        },
      };
    },
  };
}
