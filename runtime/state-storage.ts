import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { access, rm } from 'node:fs/promises';
import {
  publishDurably,
  readFileChunks,
  STAGING_DIR,
  writeChunksDurably,
  writeFileDurably,
  type SnapshotStorage,
} from '../state/index.ts';

/** Downloads the state file `relative` into `localPath` (streamed); false if the store lacks it. */
export type StateFileFetcher = (relative: string, localPath: string) => Promise<boolean>;

/**
 * Keyed-state snapshot files as checkpoint metadata wants them: written under the job's
 * checkpoint folder (`shared/...`) and recorded by *relative* path, so a savepoint folder can be
 * moved and still restore (reads resolve against the folder the metadata came from).
 */
export function checkpointSnapshotStorage(
  writeRoot: string,
  readRoot: string = writeRoot,
  fetch?: StateFileFetcher,
): SnapshotStorage {
  // With an object store, a file missing locally (another machine wrote it) is downloaded first.
  const local = async (relative: string): Promise<string> => {
    const path = join(readRoot, relative);
    if (
      fetch !== undefined &&
      !(await access(path).then(
        () => true,
        () => false,
      ))
    )
      await fetch(relative, path);
    return path;
  };
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
    read: async (relative) => readFile(await local(relative)),
    localFile: local,
    readChunks: (relative) => {
      if (fetch === undefined) return readFileChunks(join(readRoot, relative));
      const inner = readFileChunks(join(readRoot, relative));
      return {
        async *[Symbol.asyncIterator]() {
          await local(relative);
          yield* inner;
        },
        ...(inner.skip === undefined ? {} : { skip: inner.skip }),
      };
    },
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
