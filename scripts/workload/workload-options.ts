/** Options of the reference orders workload (WORKLOAD.md); {@link resolveWorkloadOptions} fills defaults. */
export interface WorkloadOptions {
  /** PRNG seed: the same seed and options give byte-identical output. @default 1 */
  readonly seed?: number;
  /** Rows in the initial snapshot (ids 1..keys); inserts then add ids above. @default 10_000 */
  readonly keys?: number;
  /** Change events including the snapshot's `r` events; tombstones and duplicates not counted. @default 100_000 */
  readonly events?: number;
  /** @default 6 */
  readonly partitions?: number;
  /** Max jitter subtracted from an event's commit time in `source.ts_ms`. @default 2_000 */
  readonly outOfOrdernessMs?: number;
  /** Fraction of streamed (non-snapshot) events emitted late, `source.ts_ms` older by `lateByMs`. @default 0.01 */
  readonly lateFraction?: number;
  /**
   * How much older a late event's `source.ts_ms` is. Far beyond window + allowed lateness on
   * purpose, so that lateness does not depend on how a consumer interleaves partitions
   * (see revenue-oracle.ts). @default 300_000
   */
  readonly lateByMs?: number;
  /** Fraction of events re-emitted later, as after a connector restart. @default 0 */
  readonly duplicateFraction?: number;
  /** How many events after the original a duplicate is re-emitted. @default 100 */
  readonly duplicateDelay?: number;
  /** Commit time of the first event, epoch ms. @default 1_700_000_000_000 */
  readonly startTsMs?: number;
  /** Commit-time step between consecutive events. @default 10 */
  readonly tickMs?: number;
  /**
   * Transactions open at once. Their changes interleave in the WAL, so `source.lsn` goes backwards
   * in commit order; `concurrency - 1` of them are in flight when the snapshot is taken (changes
   * below the snapshot LSN, committed after it). 1 = serial transactions. @default 4
   */
  readonly concurrency?: number;
  /** Changes per transaction, at most (uniform from 1). @default 3 */
  readonly maxTransactionSize?: number;
  /** Op mix after the snapshot; weights, normalised. @default { insert: 0.2, update: 0.75, delete: 0.05 } */
  readonly mix?: { readonly insert: number; readonly update: number; readonly delete: number };
}

export type ResolvedWorkloadOptions = { readonly [K in keyof WorkloadOptions]-?: NonNullable<WorkloadOptions[K]> };

/**
 * S: tests. M: benchmarks. L: state-size and checkpoint benchmarks — 10M rows snapshotted, then
 * updates only (the benchmark paces them, e.g. 10k per checkpoint).
 */
export const WORKLOAD_PRESETS = {
  S: { keys: 10_000, events: 100_000 },
  M: { keys: 100_000, events: 1_000_000 },
  L: { keys: 10_000_000, events: 11_000_000, mix: { insert: 0, update: 1, delete: 0 } },
} as const satisfies Record<string, WorkloadOptions>;

export type WorkloadSize = keyof typeof WORKLOAD_PRESETS;

const DEFAULTS: ResolvedWorkloadOptions = {
  seed: 1,
  keys: 10_000,
  events: 100_000,
  partitions: 6,
  outOfOrdernessMs: 2_000,
  lateFraction: 0.01,
  lateByMs: 300_000,
  duplicateFraction: 0,
  duplicateDelay: 100,
  startTsMs: 1_700_000_000_000,
  tickMs: 10,
  concurrency: 4,
  maxTransactionSize: 3,
  mix: { insert: 0.2, update: 0.75, delete: 0.05 },
};

export class WorkloadOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkloadOptionsError';
  }
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new WorkloadOptionsError(message);
}

export function resolveWorkloadOptions(options: WorkloadOptions = {}): ResolvedWorkloadOptions {
  const o: ResolvedWorkloadOptions = { ...DEFAULTS, ...options };
  check(Number.isInteger(o.keys) && o.keys >= 1, `keys must be a positive integer, got ${o.keys}`);
  check(
    Number.isInteger(o.events) && o.events >= o.keys,
    `events (${o.events}) must be >= keys (${o.keys}): the snapshot alone has one event per key`,
  );
  check(
    Number.isInteger(o.partitions) && o.partitions >= 1,
    `partitions must be a positive integer, got ${o.partitions}`,
  );
  for (const name of ['lateFraction', 'duplicateFraction'] as const) {
    check(o[name] >= 0 && o[name] <= 1, `${name} must be in [0, 1], got ${o[name]}`);
  }
  for (const name of ['outOfOrdernessMs', 'lateByMs', 'duplicateDelay', 'tickMs'] as const) {
    check(Number.isInteger(o[name]) && o[name] >= 0, `${name} must be a non-negative integer, got ${o[name]}`);
  }
  for (const name of ['concurrency', 'maxTransactionSize'] as const) {
    check(Number.isInteger(o[name]) && o[name] >= 1, `${name} must be a positive integer, got ${o[name]}`);
  }
  const { insert, update, delete: del } = o.mix;
  check(insert >= 0 && update >= 0 && del >= 0 && insert + update + del > 0, 'mix weights must be >= 0 and not all 0');
  return o;
}
