import { access, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointNotFoundError, CheckpointStorageError } from '../../../checkpoints/errors.ts';
import { LocalCheckpointStorage } from '../../../checkpoints/local-storage.ts';
import type { InvalidCheckpoint } from '../../../checkpoints/storage.ts';
import { resolveStateFile } from '../../../checkpoints/storage.ts';
import { makeTempDir, metadataFor, snapshot, writeStateFile } from './helpers.ts';

const JOB = 'orders';
let dir: string;
let cleanup: () => Promise<void>;
let invalid: InvalidCheckpoint[];
let storage: LocalCheckpointStorage;

beforeEach(async () => {
  ({ dir, cleanup } = await makeTempDir());
  invalid = [];
  storage = new LocalCheckpointStorage({ directory: dir, jobName: JOB, onInvalid: (i) => invalid.push(i) });
});
afterEach(() => cleanup());

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

/** Writes the state files and metadata of a checkpoint whose single task references `files`. */
async function completeCheckpoint(id: number, files: string[]): Promise<void> {
  for (const f of files) await writeStateFile(storage.fileRoot, f);
  await storage.writeCheckpoint(metadataFor(JOB, id, { 'map#0': snapshot('map#0', id, files) }));
}

describe('LocalCheckpointStorage', () => {
  it('writes metadata under <dir>/<job>/chk-<id>/_metadata and reads it back', async () => {
    await completeCheckpoint(1, ['shared/map/a.sst']);
    await completeCheckpoint(2, ['shared/map/a.sst', 'shared/map/b.sst']);
    expect(await exists(join(dir, JOB, 'chk-2', '_metadata'))).toBe(true);
    const latest = await storage.latestCompleted();
    expect(latest?.metadata.checkpointId).toBe(2);
    expect((await storage.load(1)).metadata.sharedFiles).toEqual(['shared/map/a.sst']);
    expect((await storage.list()).checkpoints.map((c) => c.metadata.checkpointId)).toEqual([1, 2]);
    expect(await readFile(resolveStateFile(await storage.load(2), 'shared/map/b.sst'), 'utf8')).toBe(
      'shared/map/b.sst',
    );
  });

  it('never picks a checkpoint whose metadata write crashed part-way', async () => {
    await completeCheckpoint(2, []);
    // Crash after writing the temp file but before the rename.
    await mkdir(join(dir, JOB, 'chk-3'), { recursive: true });
    await writeFile(join(dir, JOB, 'chk-3', '_metadata.tmp-999-abcd'), '{"formatVersion":1,"jobN');
    // Crash after tasks wrote state, before any metadata.
    await mkdir(join(dir, JOB, 'chk-4'), { recursive: true });
    // A corrupt file (e.g. disk damage) must be skipped too.
    await mkdir(join(dir, JOB, 'chk-5'), { recursive: true });
    await writeFile(join(dir, JOB, 'chk-5', '_metadata'), '{"formatVersion":1,');

    expect((await storage.latestCompleted())?.metadata.checkpointId).toBe(2);
    expect(invalid.map((i) => i.location.split('/').at(-1))).toEqual(['chk-3', 'chk-4', 'chk-5']);
    await expect(storage.load(4)).rejects.toBeInstanceOf(CheckpointNotFoundError);
    expect(await storage.highestCheckpointId()).toBe(5);
  });

  it('refuses to overwrite a completed checkpoint', async () => {
    await completeCheckpoint(1, []);
    await expect(completeCheckpoint(1, [])).rejects.toBeInstanceOf(CheckpointStorageError);
  });

  it('retention keeps the newest K and deletes only unreferenced shared files', async () => {
    await completeCheckpoint(1, ['shared/map/a.sst', 'shared/map/b.sst']);
    await completeCheckpoint(2, ['shared/map/b.sst']);
    await mkdir(join(dir, JOB, 'chk-3'), { recursive: true }); // aborted, never completed
    await completeCheckpoint(4, ['shared/map/b.sst', 'shared/map/c.sst']);
    await completeCheckpoint(5, ['shared/map/c.sst', 'shared/map/d.sst']);
    await writeStateFile(storage.fileRoot, 'shared/map/orphan.sst');
    await mkdir(join(dir, JOB, 'chk-6'), { recursive: true }); // in flight: must survive

    const result = await storage.retain(2);

    expect(result.retainedCheckpointIds).toEqual([4, 5]);
    expect(result.deletedCheckpointIds).toEqual([1, 2]);
    expect([...result.deletedFiles].sort()).toEqual(['shared/map/a.sst', 'shared/map/orphan.sst']);
    for (const kept of ['b', 'c', 'd']) expect(await exists(join(dir, JOB, 'shared/map', `${kept}.sst`))).toBe(true);
    for (const gone of ['chk-1', 'chk-2', 'chk-3']) expect(await exists(join(dir, JOB, gone))).toBe(false);
    expect(await exists(join(dir, JOB, 'chk-6'))).toBe(true);
    expect((await storage.load(4)).metadata.checkpointId).toBe(4);
  });

  it('a savepoint is self-contained: survives retention and can be moved', async () => {
    await completeCheckpoint(1, ['shared/map/a.sst']);
    const tasks = { 'map#0': snapshot('map#0', 2, ['shared/map/a.sst', 'shared/map/sp.sst']) };
    await writeStateFile(storage.fileRoot, 'shared/map/sp.sst');
    const saved = await storage.writeSavepoint(metadataFor(JOB, 2, tasks, 'savepoint'), 'before-upgrade');
    expect(saved.metadata).toMatchObject({
      kind: 'savepoint',
      savepointName: 'before-upgrade',
      fileBase: 'metadata-directory',
    });
    await completeCheckpoint(3, ['shared/map/z.sst']);

    const result = await storage.retain(1);
    expect([...result.deletedFiles].sort()).toEqual(['shared/map/a.sst', 'shared/map/sp.sst']);

    const loaded = await storage.load('before-upgrade');
    expect(await readFile(resolveStateFile(loaded, 'shared/map/a.sst'), 'utf8')).toBe('shared/map/a.sst');
    const moved = join(dir, 'elsewhere');
    await rename(loaded.location, moved);
    const fromPath = await storage.load(join(moved, '_metadata'));
    expect(fromPath.metadata.checkpointId).toBe(2);
    expect(await readFile(resolveStateFile(fromPath, 'shared/map/sp.sst'), 'utf8')).toBe('shared/map/sp.sst');
  });

  it('counts savepoints as completed: latest is the highest id of either', async () => {
    await completeCheckpoint(1, []);
    await storage.writeSavepoint(metadataFor(JOB, 2, {}, 'savepoint'), 'sp');
    expect((await storage.latestCompleted())?.metadata.kind).toBe('savepoint');
    await expect(storage.writeSavepoint(metadataFor(JOB, 3, {}, 'savepoint'), 'sp')).rejects.toThrow(/already exists/);
  });

  it('a savepoint that fails half-way leaves nothing behind and never harms an existing one', async () => {
    const tasks = { 'map#0': snapshot('map#0', 2, ['shared/map/missing.sst']) };
    await expect(storage.writeSavepoint(metadataFor(JOB, 2, tasks, 'savepoint'), 'broken')).rejects.toBeInstanceOf(
      CheckpointStorageError,
    );
    expect(await exists(join(dir, JOB, 'savepoints', 'broken'))).toBe(false);
    await storage.writeSavepoint(metadataFor(JOB, 3, {}, 'savepoint'), 'good');
    await expect(storage.writeSavepoint(metadataFor(JOB, 4, tasks, 'savepoint'), 'good')).rejects.toThrow(
      /already exists/,
    );
    expect((await storage.load('good')).metadata.checkpointId).toBe(3);
  });

  it('names what to do when a savepoint is missing', async () => {
    await expect(storage.load('nope')).rejects.toThrow(/cannot restore from "nope": no _metadata .* pick another/);
  });
});
