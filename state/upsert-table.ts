import type { ChangePosition } from './change-position.ts';
import type { ValueState } from './descriptors.ts';
import { StateError, UnstorableValueError } from './errors.ts';
import type { KeyedStateView } from './keyed-state-view.ts';
import type { Serializer } from './serializers.ts';
import { unstorableReason, upsertEntrySerializer } from './upsert-entry-codec.ts';

/** What the upsert table keeps per primary key; `row === null` is a delete tombstone. */
export interface UpsertEntry<T> {
  readonly row: T | null;
  /** Commit-order position of the change that produced this entry (see change-position.ts). */
  readonly position: ChangePosition;
  /** Set on tombstones: when the delete was applied (clock time), for tombstone expiry. */
  readonly deletedAtMs?: number;
}

export interface UpsertChange<T> {
  readonly op: 'c' | 'u' | 'r' | 'd';
  readonly position: ChangePosition;
  /** The row after the change; ignored for deletes. */
  readonly row: T | null;
}

export type UpsertResult<T> =
  { readonly kind: 'applied'; readonly previous: T | null } | { readonly kind: 'duplicate' };

export interface UpsertTableOptions<T> {
  /** State name. @default 'upsert-table' */
  readonly stateName?: string;
  /** How long a delete tombstone guards against replayed older events. @default 86_400_000 (24h) */
  readonly tombstoneTtlMs?: number;
  /** @default upsertEntrySerializer() (position header, row decoded only when read) */
  readonly serializer?: Serializer<UpsertEntry<T>>;
  /** Time source for tombstone expiry. @default the backend's clock */
  readonly clock?: () => number;
}

const DUPLICATE: UpsertResult<never> = { kind: 'duplicate' };
const APPLIED_NEW: UpsertResult<never> = { kind: 'applied', previous: null };

/**
 * A changelog turned into a table, guarded by commit-order position so replays are harmless: an
 * event whose position is not after the stored one is a duplicate (the caller drops and counts
 * it), and a delete leaves a tombstone with its position so a replayed older insert cannot
 * resurrect the row. After
 * `tombstoneTtlMs` the tombstone is gone and the key behaves as never seen.
 *
 * Synchronous like all keyed state: the keys must be loaded (the batch's keys, which the runtime
 * prefetches, or `withKeys`). `apply` and `get` set the view's current key.
 */
export class UpsertTable<T> {
  private readonly state: ValueState<UpsertEntry<T>>;
  private readonly tombstoneTtlMs: number;
  private readonly clock: () => number;
  private readonly stateName: string;

  constructor(
    private readonly backend: KeyedStateView,
    options: UpsertTableOptions<T> = {},
  ) {
    this.tombstoneTtlMs = options.tombstoneTtlMs ?? 86_400_000;
    if (!(this.tombstoneTtlMs > 0)) {
      throw new StateError(`tombstoneTtlMs must be > 0, got ${this.tombstoneTtlMs}`, { domain: 'user' });
    }
    this.clock = options.clock ?? (() => backend.now());
    const name = (this.stateName = options.stateName ?? 'upsert-table');
    this.state = backend.getValueState<UpsertEntry<T>>({
      name,
      serializer: options.serializer ?? upsertEntrySerializer<T>(),
    });
  }

  /**
   * Applies `change` unless it is a replay. `previous` of the result is decoded from the store
   * only when it is read, so callers that ignore it do not pay for it.
   */
  apply(key: unknown, change: UpsertChange<T>): UpsertResult<T> {
    const stored = this.entry(key);
    if (stored !== undefined && change.position <= stored.position) return DUPLICATE;
    if (change.op === 'd') {
      this.state.update({ row: null, position: change.position, deletedAtMs: this.clock() });
    } else {
      if (change.row === null) {
        throw new StateError(
          `upsert '${change.op}' at position ${change.position} has no row; only deletes may be null`,
          {
            domain: 'user',
          },
        );
      }
      // Refused here, per record, rather than when the batch is flushed: the caller can then
      // dead-letter this record and keep the rest.
      const unstorable = unstorableReason(change.row);
      if (unstorable !== undefined)
        throw new UnstorableValueError(`upsert at position ${change.position}: ${unstorable}`);
      this.state.update({ row: change.row, position: change.position });
    }
    return stored === undefined
      ? APPLIED_NEW
      : {
          kind: 'applied',
          get previous() {
            return stored.row ?? null;
          },
        };
  }

  /** The current row, or null when absent or deleted. */
  get(key: unknown): T | null {
    return this.entry(key)?.row ?? null;
  }

  /** The stored entry including tombstones (null row) and position; undefined when never seen. */
  entry(key: unknown): UpsertEntry<T> | undefined {
    this.backend.setCurrentKey(key);
    const stored = this.state.value();
    if (stored?.deletedAtMs !== undefined && this.clock() - stored.deletedAtMs >= this.tombstoneTtlMs) {
      this.state.clear();
      return undefined;
    }
    return stored;
  }

  /**
   * Deletes expired tombstones of keys not touched lately (lazy expiry only sees touched keys).
   * Call from a timer, outside a batch; returns how many were removed.
   */
  async purgeExpiredTombstones(chunkSize = 1_000): Promise<number> {
    let purged = 0;
    let chunk: unknown[] = [];
    const purge = async (): Promise<void> => {
      const keys = chunk;
      await this.backend.withKeys(keys, () => {
        for (const key of keys) {
          this.backend.setCurrentKey(key);
          const before = this.state.value();
          if (before !== undefined && this.entry(key) === undefined) purged++;
        }
      });
      chunk = [];
    };
    for await (const key of this.backend.keys(this.stateName)) {
      chunk.push(key);
      if (chunk.length >= chunkSize) await purge();
    }
    if (chunk.length > 0) await purge();
    return purged;
  }
}
