/**
 * Where a probe's time goes before it is visible, for the sinks benchmark's freshness phase:
 *
 *   read lag    broker append (the producer's timestamp, = source.ts_ms) → handed to the source by
 *               the Kafka client (what waits in Kafka and in the client's own fetch);
 *   queue wait  handed to the source → reaches the sink (the source's fetch buffer and the task
 *               loop's operators before the sink);
 *   after sink  reaches the sink → visible to the observer (sink buffer, barrier, PREPARE,
 *               checkpoint completion, COMMIT PREPARED, one observer poll).
 *
 * The fetcher wraps the source's Kafka client: it stamps the delivery time of every message (read
 * lag, all messages) and of the probes by id; the sink wrapper stamps the probes' arrival. The
 * parent joins them with the observer's visibility per probe, so the three parts add up exactly.
 */
import type { FetchedBatch, Fetcher } from '../../operators/sources/kafka/fetcher.ts';
import { PROBE_ID_BASE } from '../workload/paced-producer.ts';

export interface ProbeTimes {
  /** Probe id → wall-clock ms it was handed to the source. */
  readonly fetched: Map<number, number>;
  /** Probe id → wall-clock ms it reached the sink. */
  readonly arrived: Map<number, number>;
  /** Broker timestamp → delivery, ms, every message delivered while `measuring`. */
  readonly readLags: number[];
  measuring: boolean;
}

export const newProbeTimes = (): ProbeTimes => ({
  fetched: new Map(),
  arrived: new Map(),
  readLags: [],
  measuring: false,
});

/** Probe keys are `{"id":<PROBE_ID_BASE + n>}`; workload keys are shorter, so most keys are not parsed. */
const PROBE_KEY_LENGTH = `{"id":${PROBE_ID_BASE}}`.length;

function probeIdOf(key: Buffer | null): number | undefined {
  if (key === null || key.length < PROBE_KEY_LENGTH) return undefined;
  const id = (JSON.parse(key.toString('utf8')) as { id?: unknown }).id;
  return typeof id === 'number' && id >= PROBE_ID_BASE ? id : undefined;
}

/** `inner`, with every delivered batch timed. */
export function timedFetcher(inner: Fetcher, times: ProbeTimes): Fetcher {
  const wrapped: Fetcher = {
    start: (deliver, startAt, onFatal, onOffsetLoss) =>
      inner.start(
        (batch: FetchedBatch) => {
          const now = Date.now();
          for (const m of batch.messages) {
            if (times.measuring) times.readLags.push(now - m.timestampMs);
            const id = probeIdOf(m.key);
            if (id !== undefined) times.fetched.set(id, now);
          }
          return deliver(batch);
        },
        startAt,
        onFatal,
        onOffsetLoss,
      ),
    commit: (positions) => inner.commit(positions),
    endOffsets: () => inner.endOffsets(),
    assignment: () => inner.assignment(),
    stop: () => inner.stop(),
  };
  if (inner.waitForTopics !== undefined) wrapped.waitForTopics = (signal) => inner.waitForTopics!(signal);
  if (inner.committedOffsets !== undefined) wrapped.committedOffsets = () => inner.committedOffsets!();
  return wrapped;
}

/** At the sink: note the arrival of probe ids (table-change keys). */
export function noteProbeArrivals(times: ProbeTimes, values: readonly unknown[], now: number): void {
  for (const value of values) {
    const key = (value as { key?: unknown }).key;
    if (typeof key === 'number' && key >= PROBE_ID_BASE && !times.arrived.has(key)) times.arrived.set(key, now);
  }
}

/** Per probe seen by the observer: the three parts, ms. */
export interface ProbeSplit {
  readonly readLag: number[];
  readonly queueWait: number[];
  readonly afterSink: number[];
}

export function splitProbes(
  probes: ReadonlyMap<number, { readonly sourceTs: number; readonly visibleAfter: number }>,
  fetched: Readonly<Record<string, number>>,
  arrived: Readonly<Record<string, number>>,
): ProbeSplit {
  const split: ProbeSplit = { readLag: [], queueWait: [], afterSink: [] };
  for (const [id, { sourceTs, visibleAfter }] of probes) {
    const f = fetched[id];
    const a = arrived[id];
    if (f === undefined || a === undefined) continue;
    split.readLag.push(f - sourceTs);
    split.queueWait.push(a - f);
    split.afterSink.push(sourceTs + visibleAfter - a);
  }
  return split;
}
