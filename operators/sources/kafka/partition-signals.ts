/**
 * What on-call asks of a Kafka source, per partition this subtask reads, computed when scraped:
 *  - `cdcflow_source_lag_records{topic,partition}`: log end offset − position read;
 *  - `cdcflow_source_catch_up_seconds{topic,partition}`: lag ÷ how fast it shrank over the last
 *    minute of samples (0 without lag, +Inf while it does not shrink);
 *  - `cdcflow_source_silence_seconds{topic,partition,basis}`: basis="event" is now − the last
 *    record's source `ts_ms`, basis="fetch" now − the last fetch that returned data (since the
 *    source opened, before the first).
 * End offsets come from the admin client every `refreshMs` (a timer, so lag keeps growing while the
 * task loop is stuck behind a stalled sink). A partition is known once an end-offset fetch or a
 * batch named it; before the first fetch answers there is no partition to report.
 */
import type { OperatorMetrics } from '../../operator.ts';
import { parseSplit } from './fetcher.ts';

interface PartitionState {
  endOffset: bigint | undefined;
  lastEventTs: number | undefined;
  lastFetchAt: number | undefined;
  /** (time, lag) at each end-offset refresh, oldest first, at most a minute of them. */
  readonly samples: { at: number; lag: number }[];
}

const SLOPE_WINDOW_MS = 60_000;

export class PartitionSignals {
  private readonly partitions = new Map<string, PartitionState>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;
  private readonly unregister: (() => void)[] = [];

  constructor(
    private readonly position: (split: string) => string | undefined,
    private readonly owns: (split: string) => boolean,
    private readonly openedAt: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Registers the three gauges (present as soon as a partition is known). */
  register(metrics: OperatorMetrics): void {
    if (metrics.collect === undefined) return;
    this.unregister.push(
      metrics.collect('cdcflow_source_lag_records', ['topic', 'partition'], () =>
        this.sample((s, split) => this.lag(s, split)),
      ),
      metrics.collect('cdcflow_source_catch_up_seconds', ['topic', 'partition'], () =>
        this.sample((s, split) => this.catchUpSeconds(s, split)),
      ),
      metrics.collect('cdcflow_source_silence_seconds', ['topic', 'partition', 'basis'], () => this.silence()),
    );
  }

  /** Polls `endOffsets` every `refreshMs` until `stop`. */
  start(endOffsets: () => Promise<ReadonlyMap<string, { readonly high: string }>>, refreshMs: number): void {
    const refresh = (): void => {
      if (this.refreshing) return;
      this.refreshing = true;
      endOffsets()
        .then((offsets) => this.endOffsetsFetched(offsets))
        .catch(() => undefined)
        .finally(() => (this.refreshing = false));
    };
    this.timer = setInterval(refresh, refreshMs);
    this.timer.unref();
  }

  /** Stops refreshing; `unregister` also removes the series (the reader closed: a later attempt registers its own). */
  stop(unregister = true): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (unregister) for (const u of this.unregister.splice(0)) u();
  }

  endOffsetsFetched(offsets: ReadonlyMap<string, { readonly high: string }>): void {
    const at = this.now();
    for (const [split, { high }] of offsets) {
      if (!this.owns(split)) continue;
      const state = this.state(split);
      state.endOffset = BigInt(high);
      const lag = this.lag(state, split);
      if (!Number.isFinite(lag)) continue;
      state.samples.push({ at, lag });
      while (state.samples.length > 2 && at - (state.samples[0] as { at: number }).at > SLOPE_WINDOW_MS)
        state.samples.shift();
    }
  }

  /** A fetch returned records for `split` (the fetch basis of silence). */
  fetched(split: string, at: number): void {
    this.state(split).lastFetchAt = at;
  }

  /** The job received a batch of `split` whose last record committed at `sourceTs` (epoch ms). */
  delivered(split: string, sourceTs: number | undefined): void {
    if (sourceTs === undefined) return;
    const state = this.state(split);
    if (state.lastEventTs === undefined || sourceTs > state.lastEventTs) state.lastEventTs = sourceTs;
  }

  private state(split: string): PartitionState {
    let state = this.partitions.get(split);
    if (state === undefined)
      this.partitions.set(
        split,
        (state = { endOffset: undefined, lastEventTs: undefined, lastFetchAt: undefined, samples: [] }),
      );
    return state;
  }

  private lag(state: PartitionState, split: string): number {
    const position = this.position(split);
    if (state.endOffset === undefined || position === undefined) return Number.NaN;
    const lag = state.endOffset - BigInt(position);
    return lag > 0n ? Number(lag) : 0;
  }

  private catchUpSeconds(state: PartitionState, split: string): number {
    const lag = this.lag(state, split);
    if (Number.isNaN(lag)) return Number.NaN;
    if (lag === 0) return 0;
    const first = state.samples[0];
    const last = state.samples[state.samples.length - 1];
    if (first === undefined || last === undefined || last.at - first.at < 1000) return Number.NaN;
    const slopePerMs = (last.lag - first.lag) / (last.at - first.at);
    return slopePerMs >= 0 ? Number.POSITIVE_INFINITY : lag / -slopePerMs / 1000;
  }

  private *sample(
    value: (state: PartitionState, split: string) => number,
  ): Iterable<readonly [Record<string, string>, number]> {
    for (const [split, state] of this.partitions) yield [labelsOf(split), value(state, split)];
  }

  private *silence(): Iterable<readonly [Record<string, string>, number]> {
    const now = this.now();
    for (const [split, state] of this.partitions) {
      const labels = labelsOf(split);
      yield [{ ...labels, basis: 'event' }, Math.max(0, now - (state.lastEventTs ?? this.openedAt)) / 1000];
      yield [{ ...labels, basis: 'fetch' }, Math.max(0, now - (state.lastFetchAt ?? this.openedAt)) / 1000];
    }
  }
}

function labelsOf(split: string): Record<string, string> {
  const { topic, partition } = parseSplit(split);
  return { topic, partition: String(partition) };
}
