import { afterAll } from 'vitest';
import { RocksDbStore } from '../../../state/rocksdb-store.ts';
import { TempDirs } from './helpers.ts';
import { describeStoreContract } from './store-contract.ts';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

describeStoreContract('rocksdb', async () => new RocksDbStore({ location: await dirs.make('contract') }));
// Local recovery keeps bookkeeping (meta, barrier marks, undo records) in the same database: no scan may show it.
describeStoreContract(
  'rocksdb with local recovery',
  async () => new RocksDbStore({ location: await dirs.make('contract-lr'), localRecovery: true }),
);
