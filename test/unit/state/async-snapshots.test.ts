/**
 * The asynchronous phase of keyed-state snapshots: `beginSnapshot` pins the view at the barrier,
 * the file is written while processing goes on, and a failed or cancelled write rejects `done`
 * with a `SnapshotWriteError` without losing the changes it held.
 */
import { readdir } from 'node:fs/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SnapshotWriteError } from '../../../state/errors.ts';
import { KeyedStateBackend } from '../../../state/keyed-state-backend.ts';
import type { KeyedStateHandle } from '../../../state/snapshot-handle.ts';
import { LocalFsSnapshotStorage } from '../../../state/snapshot-storage.ts';
import type { ValueState } from '../../../state/descriptors.ts';
import { GatedSnapshotStorage } from '../../support/gated-snapshot-storage.ts';
import { makeStore, TempDirs, type StoreKind } from './helpers.ts';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

const ALL = { start: 0, end: 127 };
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

/** Polls `predicate` across event-loop turns (file I/O runs in between); bounded, never timed. */
async function waitFor(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Tracks whether a promise settled, without awaiting it. */
function watch<T>(promise: Promise<T>): { readonly settled: () => boolean } {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return { settled: () => settled };
}

describe.each<StoreKind>(['memory', 'rocksdb'])('asynchronous snapshots on %s', (kind) => {
  const open: KeyedStateBackend[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((b) => b.close()));
  });

  async function subject(): Promise<{ backend: KeyedStateBackend; value: ValueState<{ n: number; pad: string }> }> {
    const backend = new KeyedStateBackend({ store: await makeStore(kind, dirs), keyGroupRange: ALL });
    await backend.open();
    open.push(backend);
    return { backend, value: backend.getValueState({ name: 'value' }) };
  }

  type Subject = Awaited<ReturnType<typeof subject>>;

  async function put(s: Subject, keys: readonly number[], n: number): Promise<void> {
    await s.backend.prefetch(keys);
    for (const k of keys) {
      s.backend.setCurrentKey(k);
      s.value.update({ n, pad: 'x'.repeat(200) });
    }
    await s.backend.flush();
  }

  async function remove(s: Subject, keys: readonly number[]): Promise<void> {
    await s.backend.prefetch(keys);
    for (const k of keys) {
      s.backend.setCurrentKey(k);
      s.value.clear();
    }
    await s.backend.flush();
  }

  async function restored(handle: KeyedStateHandle, storage: LocalFsSnapshotStorage): Promise<Map<number, number>> {
    const s = await subject();
    await s.backend.restore([handle], ALL, storage);
    const out = new Map<number, number>();
    for await (const key of s.backend.keys('value')) {
      await s.backend.prefetch([key]);
      s.backend.setCurrentKey(key);
      out.set(key as number, s.value.value()?.n as number);
    }
    return out;
  }

  async function local(): Promise<{ dir: string; storage: LocalFsSnapshotStorage }> {
    const dir = await dirs.make('chk');
    return { dir, storage: new LocalFsSnapshotStorage(dir) };
  }

  it('a full snapshot holds exactly the state at the barrier while later writes go on', async () => {
    const { storage } = await local();
    const gated = new GatedSnapshotStorage(storage);
    const s = await subject();
    await put(s, range(0, 2_000), 1);
    const { done } = await s.backend.beginSnapshot(1, gated); // the first snapshot is full
    const written = watch(done);
    // Processing goes on while the file waits for the storage: updates, deletes, new keys.
    await put(s, range(0, 1_000), 2);
    await remove(s, range(1_500, 1_600));
    await put(s, range(2_000, 2_500), 3);
    await waitFor(() => gated.held === 1, 'the write to reach the storage');
    expect(written.settled()).toBe(false);
    expect(s.backend.snapshotsInFlight).toBe(1);
    // The live state has the later writes.
    await s.backend.prefetch([0, 1_550, 2_100]);
    s.backend.setCurrentKey(0);
    expect(s.value.value()?.n).toBe(2);
    s.backend.setCurrentKey(1_550);
    expect(s.value.value()).toBeUndefined();

    gated.open();
    const handle = await done;
    expect(handle.files.map((f) => f.kind)).toEqual(['full']);
    expect(s.backend.snapshotsInFlight).toBe(0);
    const state = await restored(handle, storage);
    expect(state).toEqual(new Map(range(0, 2_000).map((k) => [k, 1])));
  });

  it('the delta of an asynchronous checkpoint holds the changes up to its barrier only', async () => {
    const { storage } = await local();
    const s = await subject();
    await put(s, range(0, 100), 1);
    const h1 = await s.backend.snapshot(1, storage);
    s.backend.notifyCheckpointComplete(1);
    await put(s, range(0, 10), 2);
    const gated = new GatedSnapshotStorage(storage);
    const { done } = await s.backend.beginSnapshot(2, gated);
    await put(s, range(0, 20), 3); // after barrier 2: belongs to checkpoint 3
    gated.open();
    const h2 = await done;
    expect(h2.files.map((f) => f.path)).toEqual([...h1.files.map((f) => f.path), expect.any(String)]);
    const state = await restored(h2, storage);
    expect(range(0, 20).map((k) => state.get(k))).toEqual([
      ...range(0, 10).map(() => 2),
      ...range(10, 20).map(() => 1),
    ]);
    s.backend.notifyCheckpointComplete(2);
    const h3 = await s.backend.snapshot(3, storage);
    expect((await restored(h3, storage)).get(15)).toBe(3);
  });

  it('a failed write rejects done with a clear SnapshotWriteError; the next checkpoint carries its changes', async () => {
    const { storage } = await local();
    const s = await subject();
    await put(s, range(0, 50), 1);
    await s.backend.snapshot(1, storage);
    s.backend.notifyCheckpointComplete(1);
    await put(s, [7], 2);
    const failing = new GatedSnapshotStorage(storage, { failWith: new Error('ENOSPC: no space left on device') });
    const { done } = await s.backend.beginSnapshot(2, failing);
    const error = await done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SnapshotWriteError);
    expect(error).toMatchObject({ checkpointId: 2, cancelled: false, retriable: true });
    expect((error as Error).message).toMatch(/checkpoint 2 failed: .*ENOSPC.*declined.*next one/);
    s.backend.notifyCheckpointAborted(2); // what the coordinator answers to the decline
    await put(s, [8], 3);
    const h3 = await s.backend.snapshot(3, storage);
    const state = await restored(h3, storage);
    expect([state.get(6), state.get(7), state.get(8)]).toEqual([1, 2, 3]);
  });

  it('aborting the checkpoint cancels its full write and leaves no file; closing cancels too', async () => {
    const { dir, storage } = await local();
    const gated = new GatedSnapshotStorage(storage);
    const s = await subject();
    await put(s, range(0, 500), 1);
    const { done } = await s.backend.beginSnapshot(1, gated);
    const outcome = done.then(
      () => undefined,
      (e: unknown) => e,
    );
    s.backend.notifyCheckpointAborted(1);
    gated.open();
    expect(await outcome).toMatchObject({ checkpointId: 1, cancelled: true });
    expect(await filesUnder(dir)).toEqual([]);

    const slow = new GatedSnapshotStorage(storage);
    const second = await s.backend.beginSnapshot(2, slow);
    const secondOutcome = second.done.then(
      () => undefined,
      (e: unknown) => e,
    );
    const closing = s.backend.close(); // waits for the cancelled write to let go of the store
    slow.open();
    await closing;
    open.splice(open.indexOf(s.backend), 1);
    expect(await secondOutcome).toMatchObject({ checkpointId: 2, cancelled: true });
    expect(await filesUnder(dir)).toEqual([]);
  });
});

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => e.name);
}
