import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { BaseSource, BaseTarget, StagedBase } from './incremental-snapshotter.ts';
import type { SstCheckpoints } from './key-value-store.ts';
import type { SnapshotFileRef } from './snapshot-handle.ts';
import type { SnapshotStorage } from './snapshot-storage.ts';
import { uploadRocksDbCheckpoint } from './sst-snapshotter.ts';

/**
 * A RocksDB checkpoint as the base of a changelog chain — the *materialisation* of Flink's
 * changelog state backend. Pinned at the barrier (`CreateCheckpoint`: memtables flushed, SST files
 * hard-linked into a scratch directory); written inline (the first checkpoint of a lineage) or
 * staged in the background, uploading only SST files that `reusable` (the SST files the last
 * completed checkpoint lists) does not hold. Staged files are published, under the id of the
 * checkpoint that first lists them, by that checkpoint; until then retention does not see them.
 */
export function rocksDbCheckpointBase(
  sst: SstCheckpoints,
  checkpointId: number,
  reusable: ReadonlyMap<string, SnapshotFileRef>,
): BaseSource {
  const dir = sst.scratchDir(`base-${checkpointId}-${randomBytes(4).toString('hex')}`);
  const pinned = sst.checkpoint(dir);
  pinned.catch(() => undefined);
  return {
    pinned,
    async write(target: BaseTarget) {
      await pinned;
      return uploadRocksDbCheckpoint({ ...target, dir, reusable });
    },
    async stage(target: BaseTarget): Promise<StagedBase> {
      await pinned;
      const staged = new Set<string>();
      const storage = target.storage;
      let files: SnapshotFileRef[];
      try {
        files = await uploadRocksDbCheckpoint({
          ...target,
          dir,
          reusable,
          staged: true,
          onStaged: (n) => staged.add(n),
        });
        if (target.signal.aborted) throw target.signal.reason;
      } catch (error) {
        await discardAll(storage, staged);
        throw error;
      }
      const bytes = files.reduce((sum, f) => sum + (staged.has(f.path) ? f.bytes : 0), 0);
      return {
        bytes,
        async publish(asCheckpointId: number) {
          const out: SnapshotFileRef[] = [];
          try {
            for (const file of files) {
              if (!staged.has(file.path)) {
                out.push(file);
                continue;
              }
              const as = `${target.namePrefix}/chk-${asCheckpointId}-base-${checkpointId}-${randomBytes(4).toString('hex')}-${file.localName ?? 'file'}`;
              const path = await (storage.publishStaged as NonNullable<SnapshotStorage['publishStaged']>)(
                file.path,
                as,
              );
              staged.delete(file.path);
              out.push({ ...file, path });
            }
          } catch (error) {
            await discardAll(storage, staged);
            throw error;
          }
          return out;
        },
        discard: () => discardAll(storage, staged),
      };
    },
    async close() {
      await pinned.catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function discardAll(storage: SnapshotStorage, staged: Set<string>): Promise<void> {
  for (const name of staged) await storage.discardStaged?.(name).catch(() => undefined);
  staged.clear();
}
