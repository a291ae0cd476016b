import { afterAll } from 'vitest';
import { RocksDbStore } from '../../../state/rocksdb-store.ts';
import { TempDirs } from './helpers.ts';
import { describeStoreContract } from './store-contract.ts';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

describeStoreContract('rocksdb', async () => new RocksDbStore({ location: await dirs.make('contract') }));
