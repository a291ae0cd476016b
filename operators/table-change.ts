/**
 * What `upsert()` emits: the table as a changelog of the latest row per key. Each change carries
 * the commit-order position that produced it (state/change-position.ts), so an idempotent sink
 * can refuse to go backwards under replay, and the source commit time, so sinks can report freshness.
 */
import type { ChangePosition } from '../state/index.ts';

export type TableChange<K, Row> =
  | {
      readonly kind: 'upsert';
      readonly key: K;
      readonly row: Row;
      readonly previous: Row | null;
      readonly position: ChangePosition;
      readonly sourceTsMs: number;
      readonly origin?: ChangeOrigin;
    }
  | {
      readonly kind: 'delete';
      readonly key: K;
      readonly previous: Row | null;
      readonly position: ChangePosition;
      readonly sourceTsMs: number;
      readonly origin?: ChangeOrigin;
    };

/** Where the change that produced a table change was read (for dead letters of the sink stage). */
export interface ChangeOrigin {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}
