/**
 * Defect 6 (issue 10): a backend whose last flush fails must still close its store. Before the
 * fix `close()` threw in `flush()` before `store.close()`, the RocksDB lock stayed with the
 * process and every in-process restart failed with `LOCK: lock hold by current process`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { KeyedStateBackend } from '../../../state/keyed-state-backend.ts';
import { RocksDbStore } from '../../../state/rocksdb-store.ts';
import type { StoreWrite } from '../../../state/key-value-store.ts';
import { TempDirs } from './helpers.ts';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

/** A RocksDB store whose writes fail (a full disk, a bad value) while open and close work. */
class FailingWrites extends RocksDbStore {
  override async write(_ops: readonly StoreWrite[]): Promise<void> {
    throw new Error('injected write failure');
  }
}

describe('keyed state backend close', () => {
  it('releases the RocksDB store (and its lock) even when the final flush fails', async () => {
    const location = await dirs.make('close');
    const backend = new KeyedStateBackend({
      store: new FailingWrites({ location }),
      keyGroupRange: { start: 0, end: 127 },
    });
    await backend.open();
    const count = backend.getValueState<number>({ name: 'count' });
    await backend.prefetch(['k']);
    backend.setCurrentKey('k');
    count.update(1);
    await expect(backend.close()).rejects.toThrow(/injected write failure/);
    // What the next attempt of the job does in this process: open the same database again.
    const again = new RocksDbStore({ location });
    await expect(again.open()).resolves.toBeUndefined();
    await again.close();
  });
});
