import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { SnapshotStorage } from '../state/index.ts';

/**
 * Keyed-state snapshot files as checkpoint metadata wants them: written under the job's
 * checkpoint folder (`shared/...`) and recorded by *relative* path, so a savepoint folder can be
 * moved and still restore (reads resolve against the folder the metadata came from).
 */
export function checkpointSnapshotStorage(writeRoot: string, readRoot: string = writeRoot): SnapshotStorage {
  return {
    async write(name, data) {
      const relative = join('shared', name);
      const path = join(writeRoot, relative);
      await mkdir(dirname(path), { recursive: true });
      const temp = `${path}.tmp-${process.pid}`;
      const file = await open(temp, 'w');
      try {
        await file.writeFile(data);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temp, path);
      return relative;
    },
    read: (relative) => readFile(join(readRoot, relative)),
  };
}
