import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { StateError } from './errors.ts';

/**
 * Where snapshot files go. `write` must return only once the data is durable; the returned
 * string is what handles record and what `read` accepts. Files are shared between checkpoints
 * (a delta chain references older files), so retention must delete a file only when no retained
 * checkpoint's handle lists it.
 */
export interface SnapshotStorage {
  write(name: string, data: Buffer): Promise<string>;
  read(path: string): Promise<Buffer>;
}

/** Local (or mounted shared) filesystem: write a temp file, fsync, rename, fsync the directory. */
export class LocalFsSnapshotStorage implements SnapshotStorage {
  private readonly baseDir: string;

  constructor(baseDir: string) {
    this.baseDir = resolve(baseDir);
  }

  async write(name: string, data: Buffer): Promise<string> {
    const path = join(this.baseDir, name);
    if (!path.startsWith(this.baseDir)) {
      throw new StateError(`snapshot name '${name}' escapes the storage directory`, { domain: 'internal' });
    }
    try {
      await writeFileDurably(path, data);
      return path;
    } catch (err) {
      throw new StateError(`could not write snapshot ${path}: ${(err as Error).message}; check disk space and permissions`, {
        domain: 'external',
        retriable: true,
        cause: err,
      });
    }
  }

  async read(path: string): Promise<Buffer> {
    try {
      return await readFile(path);
    } catch (err) {
      throw new StateError(`could not read snapshot ${path}: ${(err as Error).message}; was it deleted by retention?`, {
        domain: 'external',
        retriable: true,
        cause: err,
      });
    }
  }
}

/** Writes `data` to `path` so that it survives a crash: temp file, fsync, rename, fsync the directory. */
export async function writeFileDurably(path: string, data: Buffer): Promise<void> {
  const temp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
  await mkdir(dirname(path), { recursive: true });
  const file = await open(temp, 'w');
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
  await syncDir(dirname(path));
}

async function syncDir(dir: string): Promise<void> {
  // The rename is durable only once the directory entry is; some filesystems refuse a dir fsync.
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // best effort
  } finally {
    await handle.close();
  }
}
