import type { Serializer } from './serializers.ts';

/** A state as registered with the backend; `storage` says how it is laid out in the store. */
export interface RegisteredState {
  readonly name: string;
  readonly kind: 'value' | 'list' | 'map' | 'reducing';
  readonly storage: 'value' | 'map';
  readonly namePrefix: Buffer;
  readonly serializer: Serializer<unknown>;
  readonly ttlMs: number | undefined;
}

/** Value, list and reducing state of one key. `value === undefined` means absent. */
export interface ValueSlot {
  readonly kind: 'value';
  value: unknown;
  writtenAtMs: number | undefined;
  dirty: boolean;
  /** The store key, kept from the load so a flush does not build it again. */
  readonly storeKey: Buffer;
  /**
   * What the store holds for this slot (the wrapped value; null when absent), as loaded or last
   * flushed: the prior a write hands local recovery, so its undo record reads nothing. Kept only
   * for serializers that decode lazily, whose value holds these bytes anyway; otherwise
   * undefined (not kept: a large decoded value's bytes would stay in memory beside it).
   */
  stored: Buffer | null | undefined;
}

export interface MapEntryState {
  readonly mapKey: Buffer;
  value: unknown;
  writtenAtMs: number | undefined;
}

/** Map state of one key: all entries are loaded; `dirty` holds changed map keys (latin1). */
export interface MapSlot {
  readonly kind: 'map';
  readonly entries: Map<string, MapEntryState>;
  readonly dirty: Map<string, Buffer>;
}

export type Slot = ValueSlot | MapSlot;

export interface CachedKey {
  readonly key: unknown;
  readonly keyBytes: Buffer;
  readonly keyGroup: number;
  readonly slots: Map<string, Slot>;
  dirty: boolean;
}

/**
 * The batch cache: every prefetched key with all its registered states. Map insertion order is
 * the LRU order; only clean keys are evicted, so unflushed writes are never lost.
 */
export class StateCache {
  private readonly byKey = new Map<string, CachedKey>();
  readonly dirtyKeys = new Set<CachedKey>();

  get size(): number {
    return this.byKey.size;
  }

  /** Looks a key up and marks it most recently used. */
  touch(id: string): CachedKey | undefined {
    const entry = this.byKey.get(id);
    if (entry !== undefined) {
      this.byKey.delete(id);
      this.byKey.set(id, entry);
    }
    return entry;
  }

  peek(id: string): CachedKey | undefined {
    return this.byKey.get(id);
  }

  add(id: string, entry: CachedKey): void {
    this.byKey.set(id, entry);
  }

  markDirty(entry: CachedKey): void {
    entry.dirty = true;
    this.dirtyKeys.add(entry);
  }

  /** Evicts least recently used clean keys not in `keep` until at most `max` remain. */
  evict(max: number, keep?: ReadonlySet<string>): void {
    if (this.byKey.size <= max) return;
    for (const [id, entry] of this.byKey) {
      if (this.byKey.size <= max) return;
      if (entry.dirty || keep?.has(id) === true) continue;
      this.byKey.delete(id);
    }
  }

  clear(): void {
    this.byKey.clear();
    this.dirtyKeys.clear();
  }

  entries(): IterableIterator<CachedKey> {
    return this.byKey.values();
  }
}
