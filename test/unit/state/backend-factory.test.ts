import { afterAll, describe, expect, it } from 'vitest';
import { DefaultStateBackendFactory } from '../../../state/backend-factory.ts';
import { keyGroupRangeFor } from '../../../state/key-groups.ts';
import { LocalFsSnapshotStorage } from '../../../state/snapshot-storage.ts';
import { TempDirs } from './helpers.ts';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

describe('DefaultStateBackendFactory', () => {
  it('creates an opened RocksDB backend that starts empty even over an old directory', async () => {
    const localDir = await dirs.make('local');
    const factory = new DefaultStateBackendFactory();
    const request = {
      jobName: 'orders/job',
      operatorUid: 'totals',
      subtaskIndex: 0,
      keyGroupRange: keyGroupRangeFor(0, 1),
      backend: 'rocksdb',
      localDir,
    } as const;
    const first = await factory.createKeyedBackend(request);
    const v = first.getValueState<number>({ name: 'v' });
    await first.prefetch(['a']);
    first.setCurrentKey('a');
    v.update(1);
    const handle = await first.snapshot(1, new LocalFsSnapshotStorage(await dirs.make('chk')));
    expect(handle.files[0]?.path).toContain('orders%2Fjob/totals/subtask-0/chk-1-full-');
    await first.close();

    const second = await factory.createKeyedBackend(request);
    const v2 = second.getValueState<number>({ name: 'v' });
    await second.prefetch(['a']);
    second.setCurrentKey('a');
    expect(v2.value()).toBeUndefined();
    await second.close();
  });

  it('needs localDir for rocksdb and creates memory backends without one', async () => {
    const factory = new DefaultStateBackendFactory();
    const base = { jobName: 'j', operatorUid: 'op', subtaskIndex: 0, keyGroupRange: { start: 0, end: 127 } };
    await expect(factory.createKeyedBackend({ ...base, backend: 'rocksdb' })).rejects.toThrow(/needs localDir/);
    const memory = await factory.createKeyedBackend({ ...base, backend: 'memory' });
    await memory.close();
  });
});
