import {
  resolveBackendOptions,
  type KeyedStateBackendOptions,
  type ResolvedBackendOptions,
} from './backend-options.ts';
import type {
  ListState,
  MapState,
  ReducingState,
  ReducingStateDescriptor,
  StateDescriptor,
  ValueState,
} from './descriptors.ts';
import { SnapshotWriteError, StateError } from './errors.ts';
import { randomBytes } from 'node:crypto';
import type { KeyedBatchState, KeyedStateView } from './keyed-state-view.ts';
import {
  entryFileBase,
  IncrementalSnapshotter,
  type BaseSource,
  type FullSnapshotSource,
} from './incremental-snapshotter.ts';
import { decodeKey, encodeKey } from './key-encoder.ts';
import { inKeyGroupRange, keyGroupFor, type KeyGroupRange } from './key-groups.ts';
import type { KeyValueStore, SstCheckpoints, StorePrior, StoreWrite } from './key-value-store.ts';
import { replayHandles, reusableChain } from './restore.ts';
import { v8Serializer } from './serializers.ts';
import {
  ListStateImpl,
  MapStateImpl,
  ReducingStateImpl,
  ValueStateImpl,
  type StateContext,
} from './state-accessors.ts';
import { StateCache, type CachedKey, type MapSlot, type RegisteredState, type ValueSlot } from './state-cache.ts';
import { collectWrites, loadKeys } from './state-loader.ts';
import { decodeStateKey, stateNamePrefix } from './state-key-layout.ts';
import { isRocksDbCheckpoint, type KeyedStateHandle } from './snapshot-handle.ts';
import { SstSnapshotter, sstFilesByName } from './sst-snapshotter.ts';
import { rocksDbCheckpointBase } from './rocksdb-checkpoint-base.ts';
import { restoreRocksDbCheckpoints } from './sst-restore.ts';
import { LocalFsSnapshotStorage, type SnapshotStorage } from './snapshot-storage.ts';
import { isExpired, unwrapValue } from './ttl-envelope.ts';
import { encodeSnapshotStream } from './snapshot-format.ts';
import { liveEntryFilter } from './live-entry-filter.ts';

/**
 * Bytes per step of a full snapshot's store scan. Each step is an event-loop turn shared with the
 * task loop (the snapshot is written while records flow), so steps are large.
 */
const FULL_SNAPSHOT_BATCH_BYTES = 8 << 20;

/**
 * Keyed state of one operator subtask. Per batch: `prefetch(keys)` (async) loads every
 * registered state of those keys into the cache; the operator then calls `setCurrentKey` and
 * the typed states synchronously; `flush()` writes all dirty entries as one store write and
 * records them for the next incremental snapshot. The runtime does the prefetch and the flush
 * around each batch; operators see only the `KeyedStateView` part.
 */
export class KeyedStateBackend implements StateContext, KeyedStateView, KeyedBatchState {
  private readonly options: ResolvedBackendOptions;
  private readonly store: KeyValueStore;
  private readonly states = new Map<string, RegisteredState>();
  private readonly accessors = new Map<string, unknown>();
  private readonly cache = new StateCache();
  private readonly snapshotter: IncrementalSnapshotter;
  private range: KeyGroupRange;
  private current: CachedKey | undefined;
  /**
   * Primitive keys of the last prefetch → their entries, so `setCurrentKey` on them skips the
   * key encoding. Valid until the next prefetch or flush (a flush may evict).
   */
  private batchKeys = new Map<unknown, CachedKey>();
  /**
   * With a store that takes RocksDB checkpoints in 'sst' mode: every snapshot is its SST files.
   * (In 'changelog' mode, the default, snapshots are deltas over RocksDB-checkpoint bases.)
   */
  private readonly sstSnapshotter: SstSnapshotter | undefined;
  /** Asynchronous parts of snapshots still running; `close()` waits for them. */
  private readonly snapshotWrites = new Set<Promise<unknown>>();

  constructor(options: KeyedStateBackendOptions) {
    this.options = resolveBackendOptions(options);
    this.store = this.options.store;
    this.range = this.options.keyGroupRange;
    const sst = this.store.sstCheckpoints;
    this.snapshotter = new IncrementalSnapshotter({
      maxParallelism: this.options.maxParallelism,
      maxDeltaChainLength: this.options.maxDeltaChainLength,
      maxDeltaToFullRatio: this.options.maxDeltaToFullRatio,
      namePrefix: this.options.snapshotNamePrefix,
      compaction: this.options.snapshotCompaction,
      track: (work) => this.trackSnapshotWrite(work),
      ...(sst?.mode === 'changelog'
        ? {
            materialize: {
              intervalMs: sst.materializeIntervalMs,
              deltaBytes: sst.materializeDeltaBytes,
              now: () => performance.now(),
            },
          }
        : {}),
    });
    if (sst?.mode === 'sst') {
      this.sstSnapshotter = new SstSnapshotter({
        maxParallelism: this.options.maxParallelism,
        namePrefix: this.options.snapshotNamePrefix,
      });
    }
  }

  get keyGroupRange(): KeyGroupRange {
    return this.range;
  }

  get maxParallelism(): number {
    return this.options.maxParallelism;
  }

  /** Keys currently cached (for tests and metrics). */
  get cachedKeyCount(): number {
    return this.cache.size;
  }

  async open(): Promise<void> {
    await this.store.open();
  }

  /**
   * Flushes pending writes, cancels snapshot files still being written, and closes the store —
   * whatever fails on the way: a store left open keeps its RocksDB lock, and the next attempt of
   * the job in this process could never open it again. The first error is rethrown afterwards.
   */
  async close(): Promise<void> {
    let failure: unknown;
    try {
      await this.flush();
    } catch (error) {
      failure = error;
    }
    this.snapshotter.cancelAll('the state backend is closing');
    this.sstSnapshotter?.cancelAll();
    await Promise.allSettled([...this.snapshotWrites]);
    try {
      await this.store.close();
    } catch (error) {
      failure ??= error;
    }
    if (failure !== undefined) throw failure;
  }

  getValueState<T>(descriptor: StateDescriptor<T>): ValueState<T> {
    return this.register(descriptor, 'value', (s) => new ValueStateImpl<T>(this, s));
  }

  getListState<T>(descriptor: StateDescriptor<T>): ListState<T> {
    return this.register(descriptor, 'list', (s) => new ListStateImpl<T>(this, s));
  }

  getMapState<K, V>(descriptor: StateDescriptor<V>): MapState<K, V> {
    return this.register(descriptor, 'map', (s) => new MapStateImpl<K, V>(this, s));
  }

  getReducingState<T>(descriptor: ReducingStateDescriptor<T>): ReducingState<T> {
    return this.register(descriptor, 'reducing', (s) => new ReducingStateImpl<T>(this, s, descriptor.reduce));
  }

  /** Loads all registered state of `keys` that is not cached yet. */
  async prefetch(keys: Iterable<unknown>): Promise<void> {
    const wanted = new Set<string>();
    const missing: CachedKey[] = [];
    const incomplete: CachedKey[] = [];
    const batchKeys = (this.batchKeys = new Map());
    for (const key of keys) {
      const keyBytes = encodeKey(key);
      const id = keyBytes.toString('latin1');
      if (wanted.has(id)) continue;
      wanted.add(id);
      let entry = this.cache.touch(id);
      // A cached key lacks slots only for states registered after it was loaded.
      if (entry !== undefined) {
        if (entry.slots.size < this.states.size) incomplete.push(entry);
      } else {
        entry = { key, keyBytes, keyGroup: this.checkedKeyGroup(key, keyBytes), slots: new Map(), dirty: false };
        missing.push(entry);
      }
      if (isPrimitive(key)) batchKeys.set(key, entry);
    }
    if (missing.length + incomplete.length > 0) {
      await loadKeys(this.store, [...this.states.values()], [...missing, ...incomplete]);
      for (const entry of missing) this.cache.add(entry.keyBytes.toString('latin1'), entry);
    }
    this.cache.evict(this.options.maxCachedKeys, wanted);
  }

  /** Makes `key` the key typed states read and write; it must have been prefetched. */
  setCurrentKey(key: unknown): void {
    const entry = this.batchKeys.get(key) ?? this.cache.peek(encodeKey(key).toString('latin1'));
    if (entry === undefined) {
      throw new StateError(
        `key ${describeKey(key)} was not prefetched: an operator may use the keys of the current batch and keys it passed to withKeys()`,
      );
    }
    this.current = entry;
  }

  getCurrentKey(): unknown {
    return this.current?.key;
  }

  /** Loads `keys`, runs `body` on them, writes back what it changed (see `KeyedStateView`). */
  async withKeys<R>(keys: Iterable<unknown>, body: () => R): Promise<R> {
    await this.prefetch(keys);
    const result = body();
    await this.flush();
    return result;
  }

  /** Writes every dirty cache entry as one store write; then trims the cache to its bound. */
  async flush(): Promise<void> {
    if (this.cache.dirtyKeys.size === 0) return;
    this.batchKeys = new Map();
    const writes: StoreWrite[] = [];
    const priors: StorePrior[] = [];
    for (const entry of this.cache.dirtyKeys) collectWrites(this.states, entry, writes, priors);
    this.cache.dirtyKeys.clear();
    await this.store.write(writes, priors);
    // RocksDB checkpoints of every barrier hold the changes themselves: no changelog to keep then.
    if (this.sstSnapshotter === undefined) this.snapshotter.record(writes);
    this.cache.evict(this.options.maxCachedKeys);
  }

  /**
   * Keys that have state `stateName` (not expired) in this subtask's range, decoded. Flushes
   * first so the store reflects the cache. Safe to modify state while iterating.
   */
  async *keys(stateName: string): AsyncIterableIterator<unknown> {
    const state = this.states.get(stateName);
    if (state === undefined) throw new StateError(`state '${stateName}' is not registered`, { domain: 'user' });
    await this.flush();
    const now = this.options.clock();
    let last: Buffer | undefined;
    for await (const [stored, value] of this.store.scan(state.namePrefix)) {
      const decoded = decodeStateKey(stored);
      if (decoded.stateName !== stateName || !inKeyGroupRange(this.range, decoded.keyGroup)) continue;
      if (last !== undefined && last.equals(decoded.userKey)) continue;
      if (isExpired(unwrapValue(value).writtenAtMs, state.ttlMs, now)) continue;
      last = Buffer.from(decoded.userKey);
      yield decodeKey(last);
    }
  }

  /**
   * A whole snapshot in one call: flush, capture, write. The runtime uses `beginSnapshot` instead,
   * so records keep flowing while the file is written.
   */
  async snapshot(checkpointId: number, storage: SnapshotStorage): Promise<KeyedStateHandle> {
    const { done } = await this.beginSnapshot(checkpointId, storage);
    return done;
  }

  /**
   * The synchronous part of a checkpoint, at the barrier: flushes, captures the changes since the
   * last completed checkpoint and, for a full snapshot, pins the store's view (a RocksDB
   * iterator, which reads the implicit snapshot it took when created). Resolves once that is
   * done; `done` is the asynchronous part, writing the file while the caller processes the next
   * records. Attach a handler to `done` right away: it rejects with a `SnapshotWriteError` if the
   * write fails, or is cancelled because the checkpoint was aborted or the backend closed.
   */
  async beginSnapshot(checkpointId: number, storage: SnapshotStorage): Promise<{ done: Promise<KeyedStateHandle> }> {
    await this.flush();
    const local = this.store.localRecovery;
    await local?.markBarrier(checkpointId);
    const incarnation = local?.incarnation;
    const sst = this.store.sstCheckpoints;
    let written: Promise<KeyedStateHandle>;
    if (sst !== undefined && this.sstSnapshotter !== undefined) {
      written = (await this.beginSstSnapshot(checkpointId, storage, sst, this.sstSnapshotter)).written;
    } else {
      const pins: Promise<void>[] = [];
      written = this.snapshotter.snapshot(checkpointId, storage, this.range, () => {
        const base = this.baseSnapshot(checkpointId);
        if (base.pinned !== undefined) pins.push(base.pinned);
        return base;
      });
      // A RocksDB checkpoint is pinned asynchronously (flush + links): nothing may be written before.
      // A failure rejects the write that uses it (inline) or drops the materialisation (background).
      await Promise.allSettled(pins);
    }
    const done =
      incarnation === undefined ? written : written.then((handle) => ({ ...handle, localRecovery: { incarnation } }));
    this.trackSnapshotWrite(done);
    return { done };
  }

  /**
   * The state at this barrier as a chain's base: a RocksDB checkpoint with the native binding (a
   * materialisation: SST files the last completed checkpoint lists are not uploaded again), else
   * a full entry file over a pinned scan.
   */
  private baseSnapshot(checkpointId: number): BaseSource {
    const sst = this.store.sstCheckpoints;
    if (sst !== undefined)
      return rocksDbCheckpointBase(sst, checkpointId, sstFilesByName(this.snapshotter.confirmedFiles));
    return entryFileBase(this.fullSnapshot());
  }

  /** At the barrier: RocksDB's checkpoint (flush + hard links); the upload is the asynchronous part. */
  private async beginSstSnapshot(
    checkpointId: number,
    storage: SnapshotStorage,
    sst: SstCheckpoints,
    snapshotter: SstSnapshotter,
  ): Promise<{ written: Promise<KeyedStateHandle> }> {
    const dir = sst.scratchDir(`chk-${checkpointId}-${randomBytes(4).toString('hex')}`);
    try {
      await sst.checkpoint(dir);
    } catch (error) {
      const failed = Promise.reject(
        new SnapshotWriteError(checkpointId, `RocksDB checkpoint ${checkpointId} failed: ${(error as Error).message}`, {
          cause: error,
        }),
      );
      failed.catch(() => undefined);
      return { written: failed };
    }
    return { written: snapshotter.write(checkpointId, dir, storage, this.range) };
  }

  /** Asynchronous snapshot work `close()` waits for (after cancelling it). */
  private trackSnapshotWrite(work: Promise<unknown>): void {
    const tracked = work.then(
      () => undefined,
      () => undefined,
    );
    this.snapshotWrites.add(tracked);
    void tracked.then(() => this.snapshotWrites.delete(tracked));
  }

  /** The background rebase, if any: the checkpoint whose state it holds, and whether its file is written; for tests and metrics. */
  get rebaseStatus(): { readonly checkpointId: number; readonly written: boolean } | undefined {
    return this.snapshotter.rebaseStatus;
  }

  /** Snapshot files still being written (asynchronous parts in flight); for tests and metrics. */
  get snapshotsInFlight(): number {
    return this.snapshotter.writesInFlight + (this.sstSnapshotter?.writesInFlight ?? 0);
  }

  notifyCheckpointComplete(checkpointId: number): void {
    this.snapshotter.notifyCheckpointComplete(checkpointId);
    this.sstSnapshotter?.notifyCheckpointComplete(checkpointId);
    this.store.localRecovery?.checkpointCompleted(checkpointId);
  }

  notifyCheckpointAborted(checkpointId: number): void {
    this.snapshotter.notifyCheckpointAborted(checkpointId);
    this.sstSnapshotter?.notifyCheckpointAborted(checkpointId);
  }

  /**
   * Replaces all local state with the handles' state for `keyGroupRange` (which becomes this
   * backend's range). Handles may come from any number of subtasks of the same operator.
   */
  async restore(
    handles: readonly KeyedStateHandle[],
    keyGroupRange: KeyGroupRange,
    storage?: SnapshotStorage,
  ): Promise<void> {
    const reader = storage ?? this.options.snapshotStorage ?? new LocalFsSnapshotStorage('/');
    this.cache.clear();
    this.batchKeys = new Map();
    this.current = undefined;
    this.range = keyGroupRange;
    const sstHandles = handles.filter(isRocksDbCheckpoint);
    if (await this.recoverLocally(handles, keyGroupRange)) {
      const only = handles[0] as KeyedStateHandle;
      if (this.sstSnapshotter !== undefined) this.sstSnapshotter.reset(sstHandles.length > 0 ? only : undefined);
      else this.snapshotter.reset(only.files, only.checkpointId);
      return;
    }
    if (sstHandles.length > 0) {
      const sst = this.store.sstCheckpoints;
      if (sst === undefined || sstHandles.length !== handles.length) {
        throw new StateError(
          'this checkpoint holds RocksDB checkpoints (SST files), taken with state.rocksdb.binding ' +
            "'native'; restore it with that binding",
          { domain: 'user' },
        );
      }
      const opened = await restoreRocksDbCheckpoints(sst, this.store, handles, keyGroupRange, reader, {
        maxParallelism: this.options.maxParallelism,
        batchSize: this.options.restoreBatchSize,
      });
      const only = handles[0] as KeyedStateHandle;
      this.sstSnapshotter?.reset(opened ? only : undefined);
      // Opened at the same key groups: the database is the handle's state, its chain goes on (and
      // its SST files are reused). Otherwise the first checkpoint is a new base (the whole database).
      if (opened) this.snapshotter.reset(only.files, only.checkpointId);
      else this.snapshotter.reset([], -1);
      return;
    }
    await this.store.clear();
    await replayHandles(this.store, handles, keyGroupRange, reader, {
      maxParallelism: this.options.maxParallelism,
      batchSize: this.options.restoreBatchSize,
    });
    const base = reusableChain(handles, keyGroupRange);
    this.snapshotter.reset(base.files, base.checkpointId);
    // A native store replayed from entry files: its first checkpoint uploads every SST file.
    this.sstSnapshotter?.reset(undefined);
  }

  /**
   * Local recovery: one handle of exactly our key groups, taken by the lineage of the directory
   * the last run left here. The store then holds that checkpoint's state without reading a file.
   */
  private async recoverLocally(handles: readonly KeyedStateHandle[], range: KeyGroupRange): Promise<boolean> {
    const local = this.store.localRecovery;
    const only = handles.length === 1 ? handles[0] : undefined;
    if (local === undefined || only?.localRecovery === undefined) return false;
    if (only.maxParallelism !== this.options.maxParallelism) return false;
    // Files inside our range reaching both ends: the handle's subtask had our range (after a
    // rescale its chain lists old files narrowed to their share of it until a rebase replaces them).
    const files = only.files;
    const sameRange =
      files.length > 0 &&
      files.every((f) => f.keyGroups[0] >= range.start && f.keyGroups[1] <= range.end) &&
      Math.min(...files.map((f) => f.keyGroups[0])) === range.start &&
      Math.max(...files.map((f) => f.keyGroups[1])) === range.end;
    if (!sameRange) return false;
    return local.recover(only.localRecovery.incarnation, only.checkpointId);
  }

  // StateContext, used by the typed states.
  valueSlot(state: RegisteredState): ValueSlot {
    const slot = this.slot(state);
    if (slot.kind !== 'value') throw new StateError(`state '${state.name}' is not value-like`);
    return slot;
  }

  mapSlot(state: RegisteredState): MapSlot {
    const slot = this.slot(state);
    if (slot.kind !== 'map') throw new StateError(`state '${state.name}' is not a map`);
    return slot;
  }

  markCurrentDirty(): void {
    if (this.current !== undefined) this.cache.markDirty(this.current);
  }

  now(): number {
    return this.options.clock();
  }

  private slot(state: RegisteredState): ValueSlot | MapSlot {
    const entry = this.current;
    if (entry === undefined) throw new StateError(`state '${state.name}' accessed before setCurrentKey()`);
    const slot = entry.slots.get(state.name);
    if (slot === undefined) {
      throw new StateError(
        `state '${state.name}' was registered after key ${describeKey(entry.key)} was prefetched; register all states in open()`,
      );
    }
    return slot;
  }

  private register<T, S>(
    descriptor: StateDescriptor<T>,
    kind: RegisteredState['kind'],
    make: (s: RegisteredState) => S,
  ): S {
    const existing = this.states.get(descriptor.name);
    if (existing !== undefined) {
      if (existing.kind !== kind) {
        throw new StateError(`state '${descriptor.name}' is already registered as ${existing.kind}, not ${kind}`, {
          domain: 'user',
        });
      }
      return this.accessors.get(descriptor.name) as S;
    }
    if (descriptor.ttlMs !== undefined && !(descriptor.ttlMs > 0)) {
      throw new StateError(`state '${descriptor.name}': ttlMs must be > 0, got ${descriptor.ttlMs}`, {
        domain: 'user',
      });
    }
    const state: RegisteredState = {
      name: descriptor.name,
      kind,
      storage: kind === 'map' ? 'map' : 'value',
      namePrefix: stateNamePrefix(descriptor.name),
      serializer: (descriptor.serializer as RegisteredState['serializer'] | undefined) ?? v8Serializer(),
      ttlMs: descriptor.ttlMs,
    };
    this.states.set(state.name, state);
    const accessor = make(state);
    this.accessors.set(state.name, accessor);
    // Cached keys lack a slot for the new state until the next prefetch of them loads it.
    return accessor;
  }

  /**
   * A full snapshot file's chunks: every live entry in range; expired TTL values are left out
   * (expiry judged at the barrier). The store's view and the filter are fixed here, synchronously.
   */
  private fullSnapshot(): FullSnapshotSource {
    const keep = liveEntryFilter(
      [...this.states.values()],
      this.range,
      this.options.maxParallelism,
      this.options.clock(),
    );
    const scan = this.store.scanBatches(Buffer.alloc(0), FULL_SNAPSHOT_BATCH_BYTES);
    return { chunks: encodeSnapshotStream(scan, keep), close: () => scan.close() };
  }

  private checkedKeyGroup(key: unknown, keyBytes: Buffer): number {
    const group = keyGroupFor(keyBytes, this.options.maxParallelism);
    if (!inKeyGroupRange(this.range, group)) {
      throw new StateError(
        `key ${describeKey(key)} belongs to key group ${group}, outside this subtask's range ` +
          `[${this.range.start}, ${this.range.end}]; the partitioner and the state backend disagree`,
      );
    }
    return group;
  }
}

/** Keys that Map lookups find by value, as the canonical encoding would (-0 and 0 alike). */
function isPrimitive(key: unknown): boolean {
  const type = typeof key;
  return type === 'number' || type === 'string' || type === 'boolean' || type === 'bigint';
}

function describeKey(key: unknown): string {
  try {
    const text = JSON.stringify(key, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    return text.length > 80 ? `${text.slice(0, 80)}…` : text;
  } catch {
    return String(key);
  }
}
