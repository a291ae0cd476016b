import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectSink } from '../operators/sinks/collect-sink.ts';
import type { PollResult, SourceDefinition, SourceReader } from '../operators/sources/source.ts';
import type { DataStream } from './data-stream.ts';
import { StreamEnvironment } from './environment.ts';
import { WatermarkStrategy } from './watermark-strategy.ts';

/** One scripted step: an input element at an event time, or a watermark the source declares. */
type Step<T> =
  | { readonly kind: 'element'; readonly value: T; readonly timestamp: number }
  | { readonly kind: 'watermark'; readonly timestamp: number };

/** The streams a test reads back, by name: main outputs and side outputs alike. */
export type HarnessOutputs = Readonly<Record<string, Pick<DataStream<never>, 'sinkTo'>>>;

/** What `run` returns: every named stream's records, in the order the job emitted them. */
export type HarnessResults<O extends HarnessOutputs> = {
  [K in keyof O]: O[K] extends DataStream<infer R> ? R[] : never;
};

export interface JobHarnessOptions<T> {
  /** Event time of an element sent without one. @default `source.tsMs` of a change event, else required */
  readonly timestampOf?: (value: T) => number;
  /** The watermark trails the highest event time by this much, as `WatermarkStrategy.boundedOutOfOrderness`. @default 0 */
  readonly outOfOrdernessMs?: number;
}

/**
 * Runs the pipeline part of a job on scripted input, in memory, without Kafka or a database —
 * the role of Flink's operator test harnesses and Kafka Streams' TopologyTestDriver.
 *
 * ```ts
 * const harness = new JobHarness<ChangeEvent<Order>>();
 * harness.send(orderCreated).send(orderPaid).advanceWatermark(120_000).send(tooLate);
 * const out = await harness.run((input) => {
 *   const revenue = buildRevenue(input);            // the same function the job file calls
 *   return { revenue, late: revenue.getSideOutput(LATE) };
 * });
 * expect(out.late).toHaveLength(1);
 * ```
 *
 * Each `send` and `advanceWatermark` is one source batch, so watermarks advance exactly between
 * the steps as scripted. The job runs for real (operators, keyed state in memory, checkpoints in a
 * temporary directory); at the end of input every event-time window fires, as in a bounded job.
 */
export class JobHarness<T> {
  private readonly steps: Step<T>[] = [];

  constructor(private readonly options: JobHarnessOptions<T> = {}) {}

  /** Feeds `value` with event time `timestamp` (default: `timestampOf`, or a change event's `source.tsMs`). */
  send(value: T, timestamp: number = this.timestampOf(value)): this {
    this.steps.push({ kind: 'element', value, timestamp });
    return this;
  }

  /** Moves event time to `timestamp`: windows ending at or before it fire, later elements before it are late. */
  advanceWatermark(timestamp: number): this {
    this.steps.push({ kind: 'watermark', timestamp: timestamp + (this.options.outOfOrdernessMs ?? 0) });
    return this;
  }

  /** Builds the pipeline on the scripted input, runs it to the end, and returns what each named stream produced. */
  async run<O extends HarnessOutputs>(build: (input: DataStream<T>) => O): Promise<HarnessResults<O>> {
    const dir = mkdtempSync(join(tmpdir(), 'cdcflow-harness-'));
    try {
      const env = StreamEnvironment.create({
        jobName: 'job-harness',
        checkpoints: { dir: join(dir, 'checkpoints'), intervalMs: 60_000 },
        state: { backend: 'memory', dir: join(dir, 'state') },
        restore: 'none',
        lifecycle: { handleSignals: false },
        restart: { maxAttempts: 0 },
        log: () => undefined,
      });
      const watermarks = WatermarkStrategy.boundedOutOfOrderness<Step<T>>(
        this.options.outOfOrdernessMs ?? 0,
      ).withTimestamps((step) => step.timestamp);
      const input = env
        .fromSource(scriptedSource([...this.steps]), { watermarks })
        .flatMap((step) => (step.kind === 'element' ? [step.value] : []))
        .name('harness-input');
      const outputs = build(input);
      const results: Record<string, unknown[]> = {};
      for (const [name, stream] of Object.entries(outputs)) {
        const target: unknown[] = [];
        results[name] = target;
        stream.sinkTo(collectSink(target as never[]));
      }
      const result = await env.execute();
      if (result.state !== 'finished')
        throw new Error(
          `the harnessed job ended ${result.state}, not finished: did the pipeline stop or cancel the environment?`,
        );
      return results as HarnessResults<O>;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private timestampOf(value: T): number {
    if (this.options.timestampOf !== undefined) return this.options.timestampOf(value);
    const tsMs = (value as { source?: { tsMs?: unknown } } | null)?.source?.tsMs;
    if (typeof tsMs === 'number') return tsMs;
    throw new TypeError('JobHarness.send needs an event time: pass send(value, timestamp) or the timestampOf option');
  }
}

/** One step per poll, so the runtime emits the watermark after each step (source-task.ts). */
function scriptedSource<T>(steps: readonly Step<T>[]): SourceDefinition<Step<T>> {
  return {
    name: 'harness',
    splitOwner: () => 0,
    createReader: (): SourceReader<Step<T>> => {
      let next = 0;
      return {
        open: () => Promise.resolve(),
        poll: (): Promise<PollResult<Step<T>>> => {
          const step = steps[next];
          if (step === undefined) return Promise.resolve('end');
          next++;
          return Promise.resolve({ records: [{ value: step, timestamp: step.timestamp }], split: '0', bytes: 64 });
        },
        snapshot: () => ({ positions: [{ split: '0', position: String(next) }] }),
        close: () => Promise.resolve(),
      };
    },
  };
}
