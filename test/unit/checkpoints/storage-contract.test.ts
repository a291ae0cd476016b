import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkpointStorageFor } from '../../../checkpoints/checkpoint-storage-for.ts';
import { CheckpointConfigError, CheckpointStorageError } from '../../../checkpoints/errors.ts';
import { LocalCheckpointStorage } from '../../../checkpoints/local-storage.ts';
import { S3CheckpointStorage } from '../../../checkpoints/s3-storage.ts';
import type { InvalidCheckpoint } from '../../../checkpoints/storage.ts';
import { describeCheckpointStorageContract } from '../../support/checkpoint-storage-contract.ts';
import { MemoryObjectStore } from '../../support/memory-object-store.ts';
import { makeTempDir, metadataFor, snapshot, writeStateFile } from './helpers.ts';

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

describeCheckpointStorageContract('local filesystem', async (jobName) => {
  const { dir, cleanup } = await makeTempDir();
  const invalid: InvalidCheckpoint[] = [];
  const storage = new LocalCheckpointStorage({ directory: dir, jobName, onInvalid: (i) => invalid.push(i) });
  return { storage, invalid, cleanup, stateFileKept: (path) => exists(join(storage.fileRoot, path)) };
});

for (const conditional of ['supported', 'ignored'] as const) {
  describeCheckpointStorageContract(`S3 over an in-memory store (If-None-Match ${conditional})`, async (jobName) => {
    const { dir, cleanup } = await makeTempDir();
    const store = new MemoryObjectStore(conditional);
    const invalid: InvalidCheckpoint[] = [];
    const storage = new S3CheckpointStorage({
      url: 's3://memory-bucket/team-a',
      jobName,
      stagingDirectory: dir,
      store,
      onInvalid: (i) => invalid.push(i),
    });
    return { storage, invalid, cleanup, stateFileKept: (path) => store.exists(`team-a/${jobName}/${path}`) };
  });
}

describe('S3CheckpointStorage', () => {
  const setup = async () => {
    const { dir, cleanup } = await makeTempDir();
    const store = new MemoryObjectStore();
    const storage = new S3CheckpointStorage({
      url: 's3://memory-bucket/p',
      jobName: 'orders',
      stagingDirectory: join(dir, 'staging'),
      store,
    });
    return { dir, cleanup, store, storage };
  };

  it('uploads the referenced state files before the metadata, and only once', async () => {
    const { cleanup, store, storage } = await setup();
    try {
      await writeStateFile(storage.fileRoot, 'shared/map/a.sst', 'A');
      const order: string[] = [];
      const put = store.put.bind(store);
      store.put = (key, body) => (order.push(key), put(key, body));
      await storage.writeCheckpoint(metadataFor('orders', 1, { 'map#0': snapshot('map#0', 1, ['shared/map/a.sst']) }));
      await storage.writeCheckpoint(metadataFor('orders', 2, { 'map#0': snapshot('map#0', 2, ['shared/map/a.sst']) }));
      expect(order).toEqual(['p/orders/shared/map/a.sst', 'p/orders/chk-1/_metadata', 'p/orders/chk-2/_metadata']);
    } finally {
      await cleanup();
    }
  });

  it('a metadata PUT that fails after the object landed leaves no restorable checkpoint', async () => {
    const { cleanup, store, storage } = await setup();
    try {
      store.failNextPutAfterWrite = /_metadata$/;
      await expect(storage.writeCheckpoint(metadataFor('orders', 1, {}))).rejects.toBeInstanceOf(
        CheckpointStorageError,
      );
      expect(await storage.latestCompleted()).toBeUndefined();
    } finally {
      await cleanup();
    }
  });

  it('a file that is neither uploaded nor staged fails the checkpoint, naming the staging folder', async () => {
    const { cleanup, storage } = await setup();
    try {
      const metadata = metadataFor('orders', 1, { 'map#0': snapshot('map#0', 1, ['shared/map/gone.sst']) });
      await expect(storage.writeCheckpoint(metadata)).rejects.toThrow(
        /neither in s3:\/\/memory-bucket\/p\/orders nor in the staging folder/,
      );
      expect(await storage.latestCompleted()).toBeUndefined();
    } finally {
      await cleanup();
    }
  });

  it('restore downloads a state file on demand, and a savepoint is adopted by server-side copies', async () => {
    const { dir, cleanup, store, storage } = await setup();
    try {
      await writeStateFile(storage.fileRoot, 'shared/map/a.sst', 'A');
      await storage.writeSavepoint(
        metadataFor('orders', 1, { 'map#0': snapshot('map#0', 1, ['shared/map/a.sst']) }, 'savepoint'),
        'sp',
      );
      // Another machine: empty staging folder, same bucket; the job's shared/ lost the file.
      await store.delete(['p/orders/shared/map/a.sst']);
      const elsewhere = new S3CheckpointStorage({
        url: 's3://memory-bucket/p',
        jobName: 'orders',
        stagingDirectory: join(dir, 'other'),
        store,
      });
      const loaded = await elsewhere.load('sp');
      expect(loaded.remoteFileRoot).toBe('s3://memory-bucket/p/orders/savepoints/sp');
      await elsewhere.adoptFiles(loaded);
      expect(await store.exists('p/orders/shared/map/a.sst')).toBe(true);
      const local = join(elsewhere.fileRoot, 'shared/map/a.sst');
      expect(await elsewhere.downloadStateFile('shared/map/a.sst', local)).toBe(true);
      expect(await readFile(local, 'utf8')).toBe('A');
      expect(await elsewhere.downloadStateFile('shared/map/none.sst', join(dir, 'x'))).toBe(false);
    } finally {
      await cleanup();
    }
  });

  it("restores a checkpoint of another lineage (a group-mode claim's previous epoch) with that lineage's files", async () => {
    const { dir, cleanup, store } = await setup();
    try {
      const epoch = (e: number, staging: string) =>
        new S3CheckpointStorage({
          url: `s3://memory-bucket/p/job/partitions/t-0/epoch-00000${e}`,
          jobName: 'job.t-0',
          stagingDirectory: join(dir, staging),
          store,
        });
      const first = epoch(1, 'a');
      await writeStateFile(first.fileRoot, 'shared/map/a.sst', 'A');
      const written = await first.writeCheckpoint(
        metadataFor('job.t-0', 7, { 'map#0': snapshot('map#0', 7, ['shared/map/a.sst']) }),
      );
      // The next owner: its own lineage, an empty staging folder on another machine.
      const second = epoch(2, 'b');
      const loaded = await second.load(written.location);
      expect(loaded.remoteFileRoot).toBe('s3://memory-bucket/p/job/partitions/t-0/epoch-000001/job.t-0');
      await second.adoptFiles(loaded);
      expect(await store.getText('p/job/partitions/t-0/epoch-000002/job.t-0/shared/map/a.sst')).toBe('A');
    } finally {
      await cleanup();
    }
  });

  it('is chosen by URL: s3:// is the object store, file:// and paths are local, other schemes refused', async () => {
    const { dir, cleanup } = await makeTempDir();
    try {
      expect(
        checkpointStorageFor({
          root: 's3://bucket-x/p',
          jobName: 'j',
          stagingDirectory: dir,
          connection: { endpoint: 'http://127.0.0.1:1', accessKeyId: 'a', secretAccessKey: 'b' },
        }),
      ).toBeInstanceOf(S3CheckpointStorage);
      expect(checkpointStorageFor({ root: `file://${dir}`, jobName: 'j' }).fileRoot).toBe(join(dir, 'j'));
      expect(checkpointStorageFor({ root: dir, jobName: 'j' })).toBeInstanceOf(LocalCheckpointStorage);
      expect(() => checkpointStorageFor({ root: 'gs://b/p', jobName: 'j' })).toThrow(CheckpointConfigError);
      expect(() => checkpointStorageFor({ root: 's3://B_ad/p', jobName: 'j', stagingDirectory: dir })).toThrow(
        /valid bucket name/,
      );
    } finally {
      await cleanup();
    }
  });
});
