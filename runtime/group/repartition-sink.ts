/**
 * The upstream side of a repartition topic that carries watermarks (docs/group-mode.md, "Watermarks
 * through the exchange"). A sink operator around the two-phase Kafka sink that
 * - stamps every record with the upstream task's current watermark (the combined watermark its
 *   input reached, i.e. its source partition's, from the stage's `fromSource` watermark strategy)
 *   and its origin (the task's name: the upstream source partition, the same for every owner);
 * - at each checkpoint, inside the same Kafka transaction, writes a watermark-only control record
 *   to every partition of the topic that has not yet been told this watermark — so a downstream
 *   partition that gets none of this task's records still advances, exactly as committed as the
 *   data. A task tells every partition once after it opens (at −∞ if its source has read nothing,
 *   else at its restored watermark), then only when its watermark advanced: an upstream task whose
 *   source is quiet stays quiet, and the downstream's idleness timeout leaves it out.
 * Its watermark is stored in its checkpoint beside the Kafka transaction handles, so a new owner
 * of the upstream partition resumes from the restored watermark.
 */
import type { ChangeEvent } from '../../operators/change-event.ts';
import type { Operator, OperatorContext, Output, RescaledSnapshot, StreamRecord } from '../../operators/operator.ts';
import type { SinkDefinition } from '../../operators/sinks/sink.ts';
import type { CarriedWatermark } from '../../operators/sources/source.ts';

/** What the Kafka sink under a carrying repartition sink serialises: a change, or a control record. */
export type Outgoing<Row> =
  | {
      readonly kind: 'change';
      readonly event: ChangeEvent<Row>;
      readonly partition: number;
      readonly carried: CarriedWatermark;
    }
  | { readonly kind: 'control'; readonly partition: number; readonly carried: CarriedWatermark };

interface CarryingSnapshot {
  readonly carriedWatermark?: number | '-Infinity' | 'Infinity';
}

export interface CarryingSinkSettings<Row> {
  /** The two-phase Kafka sink that writes `Outgoing` records. */
  readonly inner: SinkDefinition<Outgoing<Row>>;
  readonly partitions: number;
  readonly partitionOf: (event: ChangeEvent<Row>) => number;
  /** How many upstream tasks (origins) write the topic, told downstream with every watermark. @default not told */
  readonly upstreamTasks?: number;
  /** Thrown when a fresh task wrote records before any watermark: its stage declared no event time. */
  readonly noWatermark: () => Error;
}

/** A sink definition whose operator stamps and announces the upstream task's watermark. */
export function carryingSink<Row>(settings: CarryingSinkSettings<Row>): SinkDefinition<ChangeEvent<Row>> {
  return {
    name: settings.inner.name,
    kind: settings.inner.kind ?? 'kafka',
    replaySafety: settings.inner.replaySafety ?? 'exactly-once',
    createOperator: () => carryingOperator(settings),
  };
}

const DISCARD: Output<never> = { emit: () => undefined, emitSide: () => undefined };

function carryingOperator<Row>(settings: CarryingSinkSettings<Row>): Operator<ChangeEvent<Row>, never> {
  const inner = settings.inner.createOperator();
  let watermark = Number.NEGATIVE_INFINITY;
  let origin = '';
  /** Whether this task's watermark is known: a watermark arrived, or the checkpoint stored one. */
  let known = false;
  let restored = false;
  let wroteRecords = false;
  /** Per partition of the topic, the watermark it was last told since this task opened. */
  const told = new Map<number, number>();
  const origins = settings.upstreamTasks;
  const carried = (): CarriedWatermark => ({ origin, watermark, ...(origins === undefined ? {} : { origins }) });
  return {
    async open(context: OperatorContext, snapshot: unknown) {
      origin = context.parallelism === 1 ? context.jobName : `${context.jobName}#${context.subtaskIndex}`;
      restored = snapshot !== undefined;
      const stored = (snapshot as CarryingSnapshot | undefined)?.carriedWatermark;
      if (stored !== undefined) {
        watermark = Number(stored);
        known = true;
      }
      await inner.open?.(context, snapshot);
    },
    async processBatch(batch: readonly StreamRecord<ChangeEvent<Row>>[]) {
      if (batch.length === 0) return;
      wroteRecords = true;
      const stamp = carried();
      const out: StreamRecord<Outgoing<Row>>[] = batch.map((r) => {
        const partition = settings.partitionOf(r.value);
        told.set(partition, watermark);
        return { value: { kind: 'change', event: r.value, partition, carried: stamp }, timestamp: r.timestamp };
      });
      await inner.processBatch(out, DISCARD);
    },
    onWatermark(next: number) {
      if (next > watermark) watermark = next;
      known = true;
    },
    async snapshotState(checkpointId: number) {
      // With a watermark strategy, the source's first batch is followed by its watermark before
      // any barrier; a fresh task that wrote records without one has no event time upstream.
      if (wroteRecords && !known && !restored) throw settings.noWatermark();
      const controls: StreamRecord<Outgoing<Row>>[] = [];
      for (let partition = 0; partition < settings.partitions; partition++) {
        const last = told.get(partition);
        if (last !== undefined && last >= watermark) continue;
        told.set(partition, watermark);
        controls.push({ value: { kind: 'control', partition, carried: carried() }, timestamp: undefined });
      }
      if (controls.length > 0) await inner.processBatch(controls, DISCARD);
      const own = (await inner.snapshotState?.(checkpointId)) as Record<string, unknown> | undefined;
      return { ...own, carriedWatermark: storedWatermark(watermark) };
    },
    async notifyCheckpointComplete(checkpointId: number) {
      await inner.notifyCheckpointComplete?.(checkpointId);
    },
    async notifyCheckpointAborted(checkpointId: number) {
      await inner.notifyCheckpointAborted?.(checkpointId);
    },
    async close() {
      await inner.close?.();
    },
    mergeRescaled(parts: readonly RescaledSnapshot[], info) {
      const merged = (inner.mergeRescaled?.(parts, info) ?? {}) as Record<string, unknown>;
      // Rescaled: the lowest of the old subtasks' watermarks, none if one had none.
      const stored = parts.map((p) => (p.snapshot as CarryingSnapshot | undefined)?.carriedWatermark);
      if (stored.some((w) => w === undefined)) return merged;
      const lowest = Math.min(...stored.map((w) => Number(w)));
      return { ...merged, carriedWatermark: storedWatermark(lowest) };
    },
  };
}

function storedWatermark(watermark: number): NonNullable<CarryingSnapshot['carriedWatermark']> {
  if (watermark === Number.NEGATIVE_INFINITY) return '-Infinity';
  if (watermark === Number.POSITIVE_INFINITY) return 'Infinity';
  return watermark;
}
