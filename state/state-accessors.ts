import { StateError } from './errors.ts';
import { encodeKey, decodeKey } from './key-encoder.ts';
import type { ListState, MapState, ReducingState, ValueState } from './descriptors.ts';
import type { MapSlot, RegisteredState, ValueSlot } from './state-cache.ts';
import { isExpired } from './ttl-envelope.ts';

/** What the typed accessors need from the backend: the current key's slots and the clock. */
export interface StateContext {
  valueSlot(state: RegisteredState): ValueSlot;
  mapSlot(state: RegisteredState): MapSlot;
  /** Marks the current key as having unflushed writes. */
  markCurrentDirty(): void;
  now(): number;
}

function readSlot(ctx: StateContext, state: RegisteredState): ValueSlot {
  const slot = ctx.valueSlot(state);
  if (slot.value !== undefined && isExpired(slot.writtenAtMs, state.ttlMs, ctx.now())) {
    // Lazy expiry: the read drops the value, and the next flush deletes it from the store.
    slot.value = undefined;
    slot.writtenAtMs = undefined;
    slot.dirty = true;
    ctx.markCurrentDirty();
  }
  return slot;
}

function writeSlot(ctx: StateContext, state: RegisteredState, value: unknown): void {
  const slot = ctx.valueSlot(state);
  slot.value = value;
  slot.writtenAtMs = value === undefined || state.ttlMs === undefined ? undefined : ctx.now();
  slot.dirty = true;
  ctx.markCurrentDirty();
}

export class ValueStateImpl<T> implements ValueState<T> {
  constructor(
    private readonly ctx: StateContext,
    private readonly state: RegisteredState,
  ) {}

  value(): T | undefined {
    return readSlot(this.ctx, this.state).value as T | undefined;
  }

  update(value: T): void {
    if (value === undefined) {
      throw new StateError(`ValueState '${this.state.name}': update(undefined) is ambiguous; call clear()`, {
        domain: 'user',
      });
    }
    writeSlot(this.ctx, this.state, value);
  }

  clear(): void {
    writeSlot(this.ctx, this.state, undefined);
  }
}

export class ListStateImpl<T> implements ListState<T> {
  constructor(
    private readonly ctx: StateContext,
    private readonly state: RegisteredState,
  ) {}

  get(): readonly T[] {
    return (readSlot(this.ctx, this.state).value as T[] | undefined) ?? [];
  }

  add(value: T): void {
    writeSlot(this.ctx, this.state, [...this.get(), value]);
  }

  update(values: readonly T[]): void {
    writeSlot(this.ctx, this.state, values.length === 0 ? undefined : [...values]);
  }

  clear(): void {
    writeSlot(this.ctx, this.state, undefined);
  }
}

export class ReducingStateImpl<T> implements ReducingState<T> {
  constructor(
    private readonly ctx: StateContext,
    private readonly state: RegisteredState,
    private readonly reduce: (accumulator: T, value: T) => T,
  ) {}

  get(): T | undefined {
    return readSlot(this.ctx, this.state).value as T | undefined;
  }

  add(value: T): void {
    const current = this.get();
    writeSlot(this.ctx, this.state, current === undefined ? value : this.reduce(current, value));
  }

  clear(): void {
    writeSlot(this.ctx, this.state, undefined);
  }
}

export class MapStateImpl<K, V> implements MapState<K, V> {
  constructor(
    private readonly ctx: StateContext,
    private readonly state: RegisteredState,
  ) {}

  get(key: K): V | undefined {
    const slot = this.ctx.mapSlot(this.state);
    const id = encodeKey(key).toString('latin1');
    return this.live(slot, id)?.value as V | undefined;
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  put(key: K, value: V): void {
    if (value === undefined) {
      throw new StateError(`MapState '${this.state.name}': put(k, undefined) is ambiguous; call remove(k)`, {
        domain: 'user',
      });
    }
    const slot = this.ctx.mapSlot(this.state);
    const mapKey = encodeKey(key);
    const id = mapKey.toString('latin1');
    const writtenAtMs = this.state.ttlMs === undefined ? undefined : this.ctx.now();
    slot.entries.set(id, { mapKey, value, writtenAtMs });
    this.markDirty(slot, id, mapKey);
  }

  remove(key: K): void {
    const slot = this.ctx.mapSlot(this.state);
    const mapKey = encodeKey(key);
    const id = mapKey.toString('latin1');
    if (slot.entries.delete(id)) this.markDirty(slot, id, mapKey);
  }

  *entries(): IterableIterator<[K, V]> {
    const slot = this.ctx.mapSlot(this.state);
    // Snapshot the ids so expiry (which deletes) and caller writes don't disturb iteration.
    for (const id of [...slot.entries.keys()]) {
      const entry = this.live(slot, id);
      if (entry !== undefined) yield [decodeKey(entry.mapKey) as K, entry.value as V];
    }
  }

  *keys(): IterableIterator<K> {
    for (const [key] of this.entries()) yield key;
  }

  isEmpty(): boolean {
    const slot = this.ctx.mapSlot(this.state);
    for (const id of [...slot.entries.keys()]) if (this.live(slot, id) !== undefined) return false;
    return true;
  }

  clear(): void {
    const slot = this.ctx.mapSlot(this.state);
    for (const [id, entry] of slot.entries) this.markDirty(slot, id, entry.mapKey);
    slot.entries.clear();
  }

  /** The entry if present and not expired; drops an expired one. */
  private live(slot: MapSlot, id: string): { value: unknown; mapKey: Buffer } | undefined {
    const entry = slot.entries.get(id);
    if (entry === undefined) return undefined;
    if (isExpired(entry.writtenAtMs, this.state.ttlMs, this.ctx.now())) {
      slot.entries.delete(id);
      this.markDirty(slot, id, entry.mapKey);
      return undefined;
    }
    return entry;
  }

  private markDirty(slot: MapSlot, id: string, mapKey: Buffer): void {
    slot.dirty.set(id, mapKey);
    this.ctx.markCurrentDirty();
  }
}
