import type { OperatorContext, OperatorMetrics } from '../../operators/operator.ts';

type Labels = Readonly<Record<string, string>>;

/** Operator metrics kept in maps, for assertions. */
export class RecordingMetrics implements OperatorMetrics {
  /** Counter totals by name, summed over labels. */
  readonly counts = new Map<string, number>();
  readonly gauges = new Map<string, number>();
  /** Histogram observations by name, in order, with their labels. */
  readonly observations = new Map<string, { readonly value: number; readonly labels: Labels }[]>();

  /** @param byLabels also receives counter totals by name and labels: `name{"k":"v"}`. */
  constructor(readonly byLabels: Map<string, number> = new Map()) {}

  count(name: string, labels: Labels = {}, by = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + by);
    const key = `${name}${JSON.stringify(labels)}`;
    this.byLabels.set(key, (this.byLabels.get(key) ?? 0) + by);
  }

  gauge(name: string, value: number): void {
    this.gauges.set(name, value);
  }

  observe(name: string, seconds: number, labels: Labels = {}): void {
    let list = this.observations.get(name);
    if (list === undefined) this.observations.set(name, (list = []));
    list.push({ value: seconds, labels });
  }

  /** The values observed into histogram `name`. */
  observed(name: string): number[] {
    return (this.observations.get(name) ?? []).map((o) => o.value);
  }
}

/** An operator context for driving one operator by hand, with recording metrics. */
export function recordingOperatorContext(
  jobName: string,
  uid: string,
  metrics: RecordingMetrics = new RecordingMetrics(),
  now: () => number = () => Date.now(),
): OperatorContext {
  return { jobName, uid, subtaskIndex: 0, parallelism: 1, keyedState: undefined, metrics, now };
}

/** An operator context for driving one sink operator by hand; counters land in `counters` by name+labels. */
export function countingOperatorContext(
  jobName: string,
  uid: string,
  counters: Map<string, number> = new Map(),
): OperatorContext {
  return recordingOperatorContext(jobName, uid, new RecordingMetrics(counters));
}
