import { afterAll } from 'vitest';
import { RocksDbStore } from '../../../state/rocksdb-store.ts';
import { TempDirs } from './helpers.ts';
import { describeStoreContract } from './store-contract.ts';

// A file of its own: one process must never load both RocksDB bindings (the npm package's
// statically linked RocksDB answers calls meant for librocksdb and aborts on an assertion).
const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

// cdcflow's own addon (state/native, `npm run build:native`), the binding native checkpoints need.
describeStoreContract(
  'rocksdb, native binding',
  async () => new RocksDbStore({ location: await dirs.make('contract-native'), binding: 'native' }),
);
describeStoreContract(
  'rocksdb, native binding with local recovery',
  async () =>
    new RocksDbStore({ location: await dirs.make('contract-native-lr'), binding: 'native', localRecovery: true }),
);
