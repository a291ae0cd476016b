import type { OperatorContext } from '../../operators/operator.ts';

/** An operator context for driving one sink operator by hand; counters land in `counters` by name+labels. */
export function countingOperatorContext(jobName: string, uid: string, counters: Map<string, number> = new Map()): OperatorContext {
  return {
    jobName,
    uid,
    subtaskIndex: 0,
    parallelism: 1,
    keyedState: undefined,
    metrics: {
      count: (name, labels, by = 1) => {
        const key = `${name}${JSON.stringify(labels ?? {})}`;
        counters.set(key, (counters.get(key) ?? 0) + by);
      },
      gauge: () => undefined,
    },
    now: () => Date.now(),
  };
}
