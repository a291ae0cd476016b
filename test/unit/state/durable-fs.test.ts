import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

/** The error the next directory fsyncs fail with (directories are the only files opened read-only). */
const failing: { code: string | undefined } = vi.hoisted(() => ({ code: undefined }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const open: typeof real.open = async (path, flags, mode) => {
    const handle = await real.open(path, flags, mode);
    if (flags !== 'r' || failing.code === undefined) return handle;
    const code = failing.code;
    handle.sync = () => Promise.reject(Object.assign(new Error(`${code}: fsync ${String(path)}`), { code }));
    return handle;
  };
  return { ...real, open, default: { ...real, open } };
});

const { fsyncDirectory, isDirectorySyncUnsupported, mkdirDurable, writeFileDurably } =
  await import('../../../state/durable-fs.ts');
const { LocalFsSnapshotStorage } = await import('../../../state/snapshot-storage.ts');
const { LocalCheckpointStorage } = await import('../../../checkpoints/local-storage.ts');
const { recordParallelism } = await import('../../../checkpoints/parallelism-record.ts');
const { StateError } = await import('../../../state/errors.ts');
const { CheckpointStorageError } = await import('../../../checkpoints/errors.ts');
const { metadataFor, snapshot } = await import('../checkpoints/helpers.ts');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cdcflow-durable-'));
});
afterEach(async () => {
  failing.code = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('a failed directory fsync: one rule for snapshots and checkpoint metadata', () => {
  it.each(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP'])(
    '%s (the filesystem cannot fsync a directory) is ignored',
    async (code) => {
      failing.code = code;
      await expect(fsyncDirectory(dir)).resolves.toBeUndefined();
      await writeFileDurably(join(dir, 'a.bin'), Buffer.from('snapshot'));
      expect(await readFile(join(dir, 'a.bin'), 'utf8')).toBe('snapshot');
    },
  );

  it.each(['EIO', 'ENOSPC', 'EROFS'])('%s (write-back failed) fails the write', async (code) => {
    failing.code = code;
    await expect(fsyncDirectory(dir)).rejects.toMatchObject({ code });
    await expect(writeFileDurably(join(dir, 'a.bin'), Buffer.from('snapshot'))).rejects.toMatchObject({ code });
    await expect(mkdirDurable(join(dir, 'new', 'deeper'))).rejects.toMatchObject({ code });
  });

  it('a snapshot write fails with a StateError on EIO (it used to be ignored)', async () => {
    const storage = new LocalFsSnapshotStorage(dir);
    failing.code = 'EIO';
    const error: unknown = await storage.write('op/1.snap', Buffer.from('x')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateError);
    expect((error as Error).message).toMatch(/EIO/);
  });

  it('checkpoint metadata is written where a directory fsync is unsupported (it used to fail)', async () => {
    failing.code = 'EINVAL';
    await expect(recordParallelism(join(dir, 'job'), 2)).resolves.toBe(2);
    const storage = new LocalCheckpointStorage({ directory: dir, jobName: 'job' });
    const stored = await storage.writeCheckpoint(metadataFor('job', 1, { 'map#0': snapshot('map#0', 1) }));
    expect(JSON.parse(await readFile(join(stored.location, '_metadata'), 'utf8'))).toMatchObject({ checkpointId: 1 });
  });

  it('checkpoint metadata whose directory fsync failed with EIO is removed and the write fails', async () => {
    const storage = new LocalCheckpointStorage({ directory: dir, jobName: 'job' });
    await storage.reserve(1);
    failing.code = 'EIO';
    await expect(
      storage.writeCheckpoint(metadataFor('job', 1, { 'map#0': snapshot('map#0', 1) })),
    ).rejects.toBeInstanceOf(CheckpointStorageError);
    failing.code = undefined;
    expect(await readdir(join(dir, 'job', 'chk-1'))).toEqual([]);
  });

  it('a failed write leaves no temp file behind', async () => {
    failing.code = 'EIO';
    await expect(writeFileDurably(join(dir, 'a.bin'), 'x')).rejects.toMatchObject({ code: 'EIO' });
    failing.code = undefined;
    // The rename happened before the fsync failed: the file is there, no temp file is.
    expect((await readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('classifies errors by code only', () => {
    expect(isDirectorySyncUnsupported(Object.assign(new Error('x'), { code: 'EINVAL' }))).toBe(true);
    expect(isDirectorySyncUnsupported(Object.assign(new Error('x'), { code: 'EIO' }))).toBe(false);
    expect(isDirectorySyncUnsupported(new Error('no code'))).toBe(false);
    expect(isDirectorySyncUnsupported(undefined)).toBe(false);
  });
});
