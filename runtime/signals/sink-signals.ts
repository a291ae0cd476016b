/**
 * Per-sink on-call signals of one subtask's task loop, whatever the operators before the sink:
 *  - `cdcflow_sink_backlog_records{sink}`: records the sources handed to the job minus those handed
 *    out before the barrier of the last checkpoint this sink committed;
 *  - `cdcflow_sink_freshness_seconds{sink}` (histogram): at the sink's commit of checkpoint n, one
 *    observation per record that reached the sink before barrier n: commit time − the source commit
 *    time its batch carried (operator-runner.ts: a batch's newest source time; window and timer
 *    results carry the newest source time that had reached their operator);
 *  - `cdcflow_sink_uncommitted_age_seconds{sink}`: now − the oldest source time not committed yet
 *    (grows while a sink stalls, when the histogram gets no observations at all);
 *  - `cdcflow_sink_info{sink,kind,replay_safety}` = 1.
 * "Committed" is the sink's `notifyCheckpointComplete` returning: for two-phase sinks the moment
 * the records become visible; an idempotent sink showed them earlier (freshness is an upper bound).
 */
import type { GraphNode, JobGraph, SinkTraits } from '../graph.ts';
import type { JobMetrics } from '../metrics.ts';

export const SINK_FRESHNESS = 'cdcflow_sink_freshness_seconds';

/** Records that reached a sink between two barriers: [newest source time, count] per batch. */
interface Epoch {
  readonly batches: [number, number][];
  oldest: number | undefined;
}

interface SinkState {
  readonly traits: SinkTraits;
  current: Epoch;
  /** Aligned but not committed yet, by checkpoint id. */
  readonly aligned: Map<number, Epoch>;
  committedRead: number;
}

export interface SinkSpec {
  readonly uid: string;
  readonly traits: SinkTraits;
}

export function sinksOf(graph: JobGraph, uids: ReadonlyMap<GraphNode, string>): SinkSpec[] {
  return graph.nodes
    .filter((n) => n.isSink)
    .map((n) => ({
      uid: uids.get(n) as string,
      traits: n.sinkTraits ?? { kind: 'custom', replaySafety: 'at-least-once', sideEffects: false },
    }));
}

export class SinkSignals {
  private sourceRecords = 0;
  private readonly readAtBarrier = new Map<number, number>();
  private readonly sinks = new Map<string, SinkState>();
  private readonly unregister: (() => void)[] = [];

  constructor(
    private readonly metrics: JobMetrics,
    sinks: readonly SinkSpec[],
    private readonly now: () => number = Date.now,
  ) {
    for (const { uid, traits } of sinks)
      this.sinks.set(uid, { traits, current: emptyEpoch(), aligned: new Map(), committedRead: 0 });
    const histogram = metrics.jobHistogram(SINK_FRESHNESS, ['sink']);
    // Present from the start: a histogram with no observation yet still has its zero buckets.
    for (const uid of this.sinks.keys()) histogram.zero({ job: metrics.jobName, sink: uid });
    this.unregister.push(
      metrics.collect('cdcflow_sink_backlog_records', ['sink'], () =>
        this.each((uid, s) => Math.max(0, this.sourceRecords - s.committedRead)),
      ),
      metrics.collect('cdcflow_sink_uncommitted_age_seconds', ['sink'], () =>
        this.each((uid, s) => this.uncommittedAge(s)),
      ),
      metrics.collect('cdcflow_sink_info', ['sink', 'kind', 'replay_safety'], () =>
        [...this.sinks].map(
          ([uid, s]) => [{ sink: uid, kind: s.traits.kind, replay_safety: s.traits.replaySafety }, 1] as const,
        ),
      ),
    );
  }

  isSink(uid: string): boolean {
    return this.sinks.has(uid);
  }

  sourceRecordsRead(count: number): void {
    this.sourceRecords += count;
  }

  /** Barrier `checkpointId` entered the sources: what they handed out so far is in it. */
  barrierInjected(checkpointId: number): void {
    this.readAtBarrier.set(checkpointId, this.sourceRecords);
  }

  received(uid: string, sourceTs: number | undefined, count: number): void {
    const sink = this.sinks.get(uid);
    if (sink === undefined || sourceTs === undefined || count === 0) return;
    sink.current.batches.push([sourceTs, count]);
    if (sink.current.oldest === undefined || sourceTs < sink.current.oldest) sink.current.oldest = sourceTs;
  }

  barrierAligned(uid: string, checkpointId: number): void {
    const sink = this.sinks.get(uid);
    if (sink === undefined) return;
    sink.aligned.set(checkpointId, sink.current);
    sink.current = emptyEpoch();
  }

  /** The sink committed checkpoint `checkpointId` (and every earlier one it still held). */
  committed(uid: string, checkpointId: number): void {
    const sink = this.sinks.get(uid);
    if (sink === undefined) return;
    const now = this.now();
    // The labelled child once per commit: per observation it is a bucket search, no label hashing.
    const histogram = this.metrics
      .jobHistogram(SINK_FRESHNESS, ['sink'])
      .labels({ job: this.metrics.jobName, sink: uid });
    for (const [id, epoch] of sink.aligned) {
      if (id > checkpointId) continue;
      for (const [ts, count] of epoch.batches) {
        const seconds = Math.max(0, now - ts) / 1000;
        for (let i = 0; i < count; i++) histogram.observe(seconds);
      }
      sink.aligned.delete(id);
    }
    const read = this.readAtBarrier.get(checkpointId);
    if (read !== undefined && read > sink.committedRead) sink.committedRead = read;
    const lowest = Math.min(...[...this.sinks.values()].map((s) => s.committedRead));
    for (const [id, at] of this.readAtBarrier) if (id <= checkpointId && at <= lowest) this.readAtBarrier.delete(id);
  }

  close(): void {
    for (const u of this.unregister.splice(0)) u();
  }

  private uncommittedAge(sink: SinkState): number {
    let oldest = sink.current.oldest;
    for (const epoch of sink.aligned.values())
      if (epoch.oldest !== undefined && (oldest === undefined || epoch.oldest < oldest)) oldest = epoch.oldest;
    return oldest === undefined ? 0 : Math.max(0, this.now() - oldest) / 1000;
  }

  private each(value: (uid: string, sink: SinkState) => number): (readonly [Record<string, string>, number])[] {
    return [...this.sinks].map(([uid, s]) => [{ sink: uid }, value(uid, s)] as const);
  }
}

function emptyEpoch(): Epoch {
  return { batches: [], oldest: undefined };
}
