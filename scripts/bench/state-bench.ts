/**
 * Micro-benchmark of the state layer on RocksDB: raw puts/s, prefetch+update/s through keyed
 * state, and bytes per incremental checkpoint when 1% of the keys change.
 * Run: npx tsx scripts/bench/state-bench.ts [keys=100000]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyedStateBackend } from '../../state/keyed-state-backend.ts';
import { RocksDbStore } from '../../state/rocksdb-store.ts';
import { LocalFsSnapshotStorage } from '../../state/snapshot-storage.ts';
import { newBytesOf } from '../../state/snapshot-handle.ts';

const KEYS = Number(process.argv[2] ?? 100_000);
const BATCH = 1_000;

function rate(count: number, startNs: bigint): string {
  const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
  return `${Math.round(count / seconds).toLocaleString('en-US')}/s (${seconds.toFixed(2)} s)`;
}

async function rawPuts(dir: string): Promise<void> {
  const store = new RocksDbStore({ location: join(dir, 'raw') });
  await store.open();
  const value = Buffer.alloc(100, 7);
  const start = process.hrtime.bigint();
  for (let i = 0; i < KEYS; i += BATCH) {
    const ops = [];
    for (let k = i; k < Math.min(i + BATCH, KEYS); k++) ops.push({ key: Buffer.from(`key-${k}`), value });
    await store.write(ops);
  }
  console.log(`raw store puts (batches of ${BATCH}):       ${rate(KEYS, start)}`);
  await store.close();
}

async function keyedUpdates(backend: KeyedStateBackend, keys: readonly number[], round: number): Promise<void> {
  const state = backend.getValueState<{ count: number; total: number; name: string }>({ name: 'agg' });
  for (let i = 0; i < keys.length; i += BATCH) {
    const batch = keys.slice(i, i + BATCH);
    await backend.prefetch(batch);
    for (const key of batch) {
      backend.setCurrentKey(key);
      const prev = state.value();
      state.update({ count: (prev?.count ?? 0) + 1, total: (prev?.total ?? 0) + round, name: `customer-${key}` });
    }
    await backend.flush();
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'cdcflow-state-bench-'));
  try {
    await rawPuts(dir);
    const backend = new KeyedStateBackend({
      store: new RocksDbStore({ location: join(dir, 'keyed') }),
      keyGroupRange: { start: 0, end: 127 },
    });
    await backend.open();
    const keys = Array.from({ length: KEYS }, (_, i) => i);
    let start = process.hrtime.bigint();
    await keyedUpdates(backend, keys, 1);
    console.log(`prefetch+update+flush, new keys:          ${rate(KEYS, start)}`);
    start = process.hrtime.bigint();
    await keyedUpdates(backend, keys, 2);
    console.log(`prefetch+update+flush, existing keys:     ${rate(KEYS, start)}`);

    const storage = new LocalFsSnapshotStorage(join(dir, 'checkpoints'));
    start = process.hrtime.bigint();
    const full = await backend.snapshot(1, storage);
    backend.notifyCheckpointComplete(1);
    const fullSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    const changed = keys.filter((k) => k % 100 === 0);
    await keyedUpdates(backend, changed, 3);
    start = process.hrtime.bigint();
    const delta = await backend.snapshot(2, storage);
    const deltaSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    console.log(`full snapshot:   ${newBytesOf(full).toLocaleString('en-US')} bytes in ${fullSeconds.toFixed(2)} s`);
    console.log(
      `delta snapshot (${changed.length} of ${KEYS} keys changed): ${newBytesOf(delta).toLocaleString('en-US')} bytes ` +
        `in ${deltaSeconds.toFixed(3)} s = ${((100 * newBytesOf(delta)) / newBytesOf(full)).toFixed(2)}% of full`,
    );

    const restored = new KeyedStateBackend({
      store: new RocksDbStore({ location: join(dir, 'restored') }),
      keyGroupRange: { start: 0, end: 127 },
    });
    await restored.open();
    start = process.hrtime.bigint();
    await restored.restore([delta], { start: 0, end: 127 }, storage);
    console.log(`restore full+delta chain:                 ${rate(KEYS, start)} keys`);
    await restored.close();
    await backend.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
