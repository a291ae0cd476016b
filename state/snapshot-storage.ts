import { open, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { publishDurably, writeChunksDurably, writeFileDurably } from './durable-fs.ts';
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
  /**
   * Like `write`, for data produced as a stream (full snapshots), so it need not be held in memory
   * at once. Optional: without it the chunks are joined and passed to `write`.
   */
  writeChunks?(name: string, chunks: AsyncIterable<Buffer>): Promise<string>;
  /**
   * The file at `path` as a stream of chunks, so restore never holds a whole file (a file over
   * 2 GiB cannot even be read into one Buffer). Optional: without it restore falls back to `read`.
   */
  readChunks?(path: string): SnapshotChunks;
  /**
   * Background rebase (see incremental-snapshotter.ts): writes a file where checkpoint retention
   * does not look — it may take longer than many checkpoints, and retention deletes every file
   * no checkpoint references — durably, under `name`. Optional, with `publishStaged`: a storage
   * without them gets today's inline full snapshots.
   */
  writeStaged?(name: string, chunks: AsyncIterable<Buffer>): Promise<void>;
  /**
   * Moves the staged file `name` to where `write(as)` would have put it (`as` defaults to `name`)
   * and returns that path. Called in the asynchronous part of the checkpoint whose handle first
   * lists the file; `as` carries that checkpoint's id (`chk-<id>-…`), which is what keeps
   * retention running beside checkpoints in flight from deleting it before that checkpoint completes.
   */
  publishStaged?(name: string, as?: string): Promise<string>;
  /** Removes a staged file (a cancelled or superseded rebase); missing is fine. */
  discardStaged?(name: string): Promise<void>;
  /**
   * A local filesystem path holding the file at `path` (downloaded first if the storage is
   * remote). Optional: a RocksDB-checkpoint restore hard-links SST files from it instead of
   * copying them through `readChunks`.
   */
  localFile?(path: string): Promise<string>;
}

/** Where staged files live beside the published ones. */
export const STAGING_DIR = 'staging';

/** Bytes per chunk of a streamed snapshot read: large enough for few event-loop turns, small against memory. */
export const READ_CHUNK_BYTES = 4 << 20;

/**
 * A snapshot file read in chunks. `skip(n)` (optional) moves past `n` bytes after the last chunk
 * yielded without reading them: restore skips the sections of key groups it does not own, which
 * after rescaling is most of each file.
 */
export interface SnapshotChunks extends AsyncIterable<Buffer> {
  skip?(bytes: number): void;
}

/** `path`'s bytes in chunks of `READ_CHUNK_BYTES`, read errors as `StateError`s that say what to check. */
export function readFileChunks(path: string): SnapshotChunks {
  let position = 0;
  async function* chunks(): AsyncGenerator<Buffer> {
    let file;
    try {
      file = await open(path, 'r');
      for (;;) {
        // A fresh buffer per chunk: the parser hands out views of it until they are written.
        const buffer = Buffer.allocUnsafeSlow(READ_CHUNK_BYTES);
        const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) return;
        position += bytesRead;
        yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
      }
    } catch (err) {
      throw new StateError(`could not read snapshot ${path}: ${(err as Error).message}; was it deleted by retention?`, {
        domain: 'external',
        retriable: true,
        cause: err,
      });
    } finally {
      await file?.close();
    }
  }
  return {
    [Symbol.asyncIterator]: chunks,
    skip: (bytes) => void (position += bytes),
  };
}

/** Writes `chunks` through the storage's streaming write if it has one; returns path and bytes. */
export async function writeSnapshotChunks(
  storage: SnapshotStorage,
  name: string,
  chunks: AsyncIterable<Buffer>,
): Promise<{ path: string; bytes: number }> {
  let bytes = 0;
  const counted = (async function* count() {
    for await (const chunk of chunks) {
      bytes += chunk.length;
      yield chunk;
    }
  })();
  if (storage.writeChunks !== undefined) {
    const path = await storage.writeChunks(name, counted);
    return { path, bytes };
  }
  const all: Buffer[] = [];
  for await (const chunk of counted) all.push(chunk);
  return { path: await storage.write(name, Buffer.concat(all)), bytes };
}

/** Local (or mounted shared) filesystem: write a temp file, fsync, rename, fsync the directory. */
export class LocalFsSnapshotStorage implements SnapshotStorage {
  private readonly baseDir: string;

  constructor(baseDir: string) {
    this.baseDir = resolve(baseDir);
  }

  write(name: string, data: Buffer): Promise<string> {
    return this.writeWith(name, (path) => writeFileDurably(path, data));
  }

  writeChunks(name: string, chunks: AsyncIterable<Buffer>): Promise<string> {
    return this.writeWith(name, (path) => writeChunksDurably(path, chunks));
  }

  private async writeWith(name: string, write: (path: string) => Promise<void>): Promise<string> {
    const path = join(this.baseDir, name);
    if (!path.startsWith(this.baseDir)) {
      throw new StateError(`snapshot name '${name}' escapes the storage directory`, { domain: 'internal' });
    }
    try {
      await write(path);
      return path;
    } catch (err) {
      if (err instanceof StateError) throw err;
      throw new StateError(
        `could not write snapshot ${path}: ${(err as Error).message}; check disk space and permissions`,
        {
          domain: 'external',
          retriable: true,
          cause: err,
        },
      );
    }
  }

  readChunks(path: string): SnapshotChunks {
    return readFileChunks(path);
  }

  async writeStaged(name: string, chunks: AsyncIterable<Buffer>): Promise<void> {
    await this.writeWith(join(STAGING_DIR, name), (path) => writeChunksDurably(path, chunks));
  }

  async publishStaged(name: string, as: string = name): Promise<string> {
    const to = join(this.baseDir, as);
    await publishDurably(join(this.baseDir, STAGING_DIR, name), to);
    return to;
  }

  async discardStaged(name: string): Promise<void> {
    await rm(join(this.baseDir, STAGING_DIR, name), { force: true });
  }

  localFile(path: string): Promise<string> {
    return Promise.resolve(path);
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
