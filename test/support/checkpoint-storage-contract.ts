/**
 * The behaviour every `CheckpointStorage` must have, written against the interface only, run
 * against the local filesystem, the S3 storage over an in-memory store (unit) and over a real
 * S3-compatible server (contract project).
 */
import { describe, expect, it } from 'vitest';
import { CheckpointNotFoundError, CheckpointStorageError } from '../../checkpoints/errors.ts';
import type { CheckpointStorage, InvalidCheckpoint } from '../../checkpoints/storage.ts';
import { metadataFor, snapshot, writeStateFile } from '../unit/checkpoints/helpers.ts';

export interface StorageUnderTest {
  readonly storage: CheckpointStorage;
  /** Whether a state file (relative to the job folder) is kept in durable storage. */
  stateFileKept(path: string): Promise<boolean>;
  /** The invalid checkpoints the storage reported so far. */
  readonly invalid: InvalidCheckpoint[];
  cleanup(): Promise<void>;
}

export function describeCheckpointStorageContract(
  name: string,
  create: (jobName: string) => Promise<StorageUnderTest>,
  options: { skip?: string } = {},
): void {
  const suite = options.skip === undefined ? describe : describe.skip;
  suite(`CheckpointStorage contract: ${name}${options.skip === undefined ? '' : ` (skipped: ${options.skip})`}`, () => {
    const JOB = 'orders';
    const withStorage =
      (test: (t: StorageUnderTest, complete: (id: number, files: string[]) => Promise<void>) => Promise<void>) =>
      async () => {
        const t = await create(JOB);
        const complete = async (id: number, files: string[]): Promise<void> => {
          for (const f of files) await writeStateFile(t.storage.fileRoot, f);
          await t.storage.reserve(id);
          await t.storage.writeCheckpoint(metadataFor(JOB, id, { 'map#0': snapshot('map#0', id, files) }));
        };
        try {
          await test(t, complete);
        } finally {
          await t.cleanup();
        }
      };

    it(
      'writes checkpoints and reads them back: latest, by id, listed in order',
      withStorage(async ({ storage }, complete) => {
        await complete(1, ['shared/map/a.sst']);
        await complete(2, ['shared/map/a.sst', 'shared/map/b.sst']);
        expect((await storage.latestCompleted())?.metadata.checkpointId).toBe(2);
        expect((await storage.load(1)).metadata.sharedFiles).toEqual(['shared/map/a.sst']);
        expect((await storage.list()).checkpoints.map((c) => c.metadata.checkpointId)).toEqual([1, 2]);
        expect(await storage.highestCheckpointId()).toBe(2);
      }),
    );

    it(
      'a reserved id that never completed is skipped for restore but never reused',
      withStorage(async (t, complete) => {
        await complete(2, []);
        await t.storage.reserve(3);
        expect((await t.storage.latestCompleted())?.metadata.checkpointId).toBe(2);
        expect(await t.storage.highestCheckpointId()).toBe(3);
        expect(t.invalid.map((i) => i.location.split('/').at(-1))).toContain('chk-3');
        await expect(t.storage.load(3)).rejects.toBeInstanceOf(CheckpointNotFoundError);
      }),
    );

    it(
      'refuses to overwrite a completed checkpoint',
      withStorage(async (_t, complete) => {
        await complete(1, []);
        await expect(complete(1, [])).rejects.toBeInstanceOf(CheckpointStorageError);
      }),
    );

    it(
      'retention keeps the newest K and deletes only unreferenced state files',
      withStorage(async (t, complete) => {
        await complete(1, ['shared/map/a.sst', 'shared/map/b.sst']);
        await complete(2, ['shared/map/b.sst']);
        await t.storage.reserve(3); // aborted, never completed
        await complete(4, ['shared/map/b.sst', 'shared/map/c.sst']);
        await complete(5, ['shared/map/c.sst', 'shared/map/d.sst']);
        await t.storage.reserve(6); // in flight: must survive

        const result = await t.storage.retain(2);

        expect(result.retainedCheckpointIds).toEqual([4, 5]);
        expect(result.deletedCheckpointIds).toEqual([1, 2]);
        expect([...result.deletedFiles].sort()).toEqual(['shared/map/a.sst']);
        for (const kept of ['b', 'c', 'd']) expect(await t.stateFileKept(`shared/map/${kept}.sst`)).toBe(true);
        expect(await t.stateFileKept('shared/map/a.sst')).toBe(false);
        await expect(t.storage.load(1)).rejects.toBeInstanceOf(CheckpointNotFoundError);
        expect((await t.storage.load(4)).metadata.checkpointId).toBe(4);
        expect(await t.storage.highestCheckpointId()).toBe(6);
      }),
    );

    it(
      'a savepoint is self-contained, survives retention and counts as completed',
      withStorage(async (t, complete) => {
        await complete(1, ['shared/map/a.sst']);
        await writeStateFile(t.storage.fileRoot, 'shared/map/sp.sst');
        const tasks = { 'map#0': snapshot('map#0', 2, ['shared/map/a.sst', 'shared/map/sp.sst']) };
        const saved = await t.storage.writeSavepoint(metadataFor(JOB, 2, tasks, 'savepoint'), 'before-upgrade');
        expect(saved.metadata).toMatchObject({
          kind: 'savepoint',
          savepointName: 'before-upgrade',
          fileBase: 'metadata-directory',
        });
        expect((await t.storage.latestCompleted())?.metadata.kind).toBe('savepoint');
        await complete(3, ['shared/map/z.sst']);
        const result = await t.storage.retain(1);
        expect([...result.deletedFiles].sort()).toEqual(['shared/map/a.sst', 'shared/map/sp.sst']);
        const loaded = await t.storage.load('before-upgrade');
        expect(loaded.metadata.checkpointId).toBe(2);
        await expect(t.storage.writeSavepoint(metadataFor(JOB, 4, {}, 'savepoint'), 'before-upgrade')).rejects.toThrow(
          /already exists/,
        );
      }),
    );

    it(
      'a savepoint that fails half-way leaves nothing restorable behind',
      withStorage(async (t) => {
        const tasks = { 'map#0': snapshot('map#0', 2, ['shared/map/missing.sst']) };
        await expect(
          t.storage.writeSavepoint(metadataFor(JOB, 2, tasks, 'savepoint'), 'broken'),
        ).rejects.toBeInstanceOf(CheckpointStorageError);
        await expect(t.storage.load('broken')).rejects.toBeInstanceOf(CheckpointNotFoundError);
        expect(await t.storage.latestCompleted()).toBeUndefined();
      }),
    );

    it(
      'names what to do when a savepoint is missing',
      withStorage(async ({ storage }) => {
        await expect(storage.load('nope')).rejects.toThrow(/cannot restore from "nope": no _metadata .* pick another/);
      }),
    );
  });
}
