/**
 * Durable writes to a local (or mounted) filesystem: the one helper behind snapshot files
 * (state/snapshot-storage.ts, runtime/state-storage.ts) and checkpoint metadata
 * (checkpoints/local-storage.ts, checkpoints/parallelism-record.ts).
 *
 * A write is durable once its data and its directory entry are: write a temp file, fsync it,
 * rename it into place, fsync the directory. A new directory is durable once its parent's entry is.
 *
 * **A failed directory fsync.** On Linux, fsync(2) of a directory fd on ext4, xfs or btrfs either
 * succeeds or reports that the journal/metadata write-back failed: EIO (or ENOSPC/EDQUOT where the
 * filesystem reserves at commit, e.g. over NFS). Then the rename may not survive a crash, and a
 * second fsync can return success without the data being written (the kernel reports a write-back
 * error once per file description, then marks the pages clean — PostgreSQL's "fsyncgate", 2018), so
 * such an error fails the write: the caller declines the checkpoint and the next one writes anew.
 * Some filesystems cannot fsync a directory at all and say so at once with EINVAL (documented
 * for fds that "do not support synchronization", e.g. some FUSE and network filesystems) or
 * ENOTSUP/EOPNOTSUPP. Nothing better than the rename is available there, the file's own data was
 * already fsynced, and refusing would make checkpoints impossible on them, so exactly these codes
 * are ignored; any other error (EIO, ENOSPC, EROFS, EBADF, …) throws.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Suffix marker of in-progress writes; readers ignore any file containing it. */
export const TEMP_MARKER = '.tmp-';

/** Codes with which a filesystem says it cannot fsync a directory at all (see the module comment). */
const DIRECTORY_SYNC_UNSUPPORTED = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP']);

/** True for a directory fsync error that means "not supported here", not "the write-back failed". */
export function isDirectorySyncUnsupported(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && DIRECTORY_SYNC_UNSUPPORTED.has(code);
}

/** Makes `dir`'s entries (renames, new files and folders in it) durable; see the module comment for what fails. */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (error) {
    if (!isDirectorySyncUnsupported(error)) throw error;
  } finally {
    await handle.close();
  }
}

/** Writes `data` to `path` so a reader sees either nothing or the whole file, even across a crash or power loss. */
export async function writeFileDurably(path: string, data: Buffer | string): Promise<void> {
  await writeChunksDurably(path, [typeof data === 'string' ? Buffer.from(data, 'utf8') : data]);
}

/**
 * Chunks are gathered up to this size before one `write`: a full snapshot is written while the
 * task loop runs, and each write is one trip through libuv's pool and one event-loop turn the
 * loop shares, so ~1 MiB sections written one by one stretched a 130 MB snapshot over hundreds
 * of turns.
 */
const WRITE_BYTES = 8 << 20;

/** `writeFileDurably` for data that arrives in chunks; a failed producer leaves no file behind. */
export async function writeChunksDurably(
  path: string,
  chunks: AsyncIterable<Buffer> | Iterable<Buffer>,
): Promise<void> {
  const temp = `${path}${TEMP_MARKER}${process.pid}-${randomBytes(4).toString('hex')}`;
  await mkdirDurable(dirname(path));
  const file = await open(temp, 'wx');
  const writeAll = async (data: Buffer): Promise<void> => {
    // A write may be partial; the rest follows until the data is on its way.
    for (let at = 0; at < data.length;) at += (await file.write(data, at, data.length - at)).bytesWritten;
  };
  // One vectored write per gathered run: no copy of the chunks into one buffer (the copy cost
  // the task thread ~3 % of its CPU on the upsert harness, at every delta snapshot).
  const writeGathered = async (gathered: Buffer[], bytes: number): Promise<void> => {
    if (gathered.length === 1) return writeAll(gathered[0] as Buffer);
    let written = (await file.writev(gathered)).bytesWritten;
    if (written === bytes) return;
    // Partial (rare on regular files): the rest chunk by chunk.
    for (const chunk of gathered) {
      if (written >= chunk.length) {
        written -= chunk.length;
        continue;
      }
      await writeAll(written === 0 ? chunk : chunk.subarray(written));
      written = 0;
    }
  };
  try {
    let gathered: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of chunks) {
      if (chunk.length === 0) continue;
      gathered.push(chunk);
      bytes += chunk.length;
      // IOV_MAX (1024 on Linux) bounds one writev's chunks.
      if (bytes < WRITE_BYTES && gathered.length < 1024) continue;
      await writeGathered(gathered, bytes);
      gathered = [];
      bytes = 0;
    }
    if (bytes > 0) await writeGathered(gathered, bytes);
    await file.sync();
  } catch (err) {
    await file.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
  await file.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await fsyncDirectory(dirname(path));
}

/** `rename` made durable: the target's folder exists durably and its new entry is fsynced. */
export async function publishDurably(from: string, to: string): Promise<void> {
  await mkdirDurable(dirname(to));
  await rename(from, to);
  await fsyncDirectory(dirname(to));
}

/** Copies a file and fsyncs the copy and its entry, so a savepoint's files are durable before its metadata. */
export async function copyFileDurable(from: string, to: string): Promise<void> {
  await mkdirDurable(dirname(to));
  await copyFile(from, to);
  const handle = await open(to, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fsyncDirectory(dirname(to));
}

/** Creates `dir` (and parents) and fsyncs the parent of each folder it created, so the new entries survive a crash. */
export async function mkdirDurable(dir: string): Promise<void> {
  const created = await mkdir(dir, { recursive: true });
  if (created === undefined) return;
  // Every new entry lives in its parent: fsync each parent from `dir` up to the first one created.
  const stop = dirname(created);
  for (let parent = dirname(dir); ; parent = dirname(parent)) {
    await fsyncDirectory(parent);
    if (parent === stop || parent === dirname(parent)) return;
  }
}
