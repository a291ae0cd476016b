import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { publishDurably, readFileChunks, STAGING_DIR, writeChunksDurably, writeFileDurably, type SnapshotStorage } from '../state/index.ts';

/**
 * Keyed-state snapshot files as checkpoint metadata wants them: written under the job's
 * checkpoint folder (`shared/...`) and recorded by *relative* path, so a savepoint folder can be
 * moved and still restore (reads resolve against the folder the metadata came from).
 */
export function checkpointSnapshotStorage(writeRoot: string, readRoot: string = writeRoot): SnapshotStorage {
  return {
    async write(name, data) {
      const relative = join('shared', name);
      await writeFileDurably(join(writeRoot, relative), data);
      return relative;
    },
    async writeChunks(name, chunks) {
      const relative = join('shared', name);
      await writeChunksDurably(join(writeRoot, relative), chunks);
      return relative;
    },
    read: (relative) => readFile(join(readRoot, relative)),
    readChunks: (relative) => readFileChunks(join(readRoot, relative)),
    // Staged files sit beside `shared/`, where retention does not sweep, until a checkpoint lists them.
    writeStaged: (name, chunks) => writeChunksDurably(join(writeRoot, STAGING_DIR, name), chunks),
    async publishStaged(name, as = name) {
      const relative = join('shared', as);
      await publishDurably(join(writeRoot, STAGING_DIR, name), join(writeRoot, relative));
      return relative;
    },
    discardStaged: (name) => rm(join(writeRoot, STAGING_DIR, name), { force: true }),
  };
}
