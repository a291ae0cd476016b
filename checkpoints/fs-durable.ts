import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Suffix marker of in-progress writes; readers ignore any file containing it. */
export const TEMP_MARKER = '.tmp-';

/**
 * Writes `dir/fileName` so a reader sees either nothing or the whole file, even across a crash or
 * power loss: write a temp file, fsync it, rename it into place, fsync the directory (the rename
 * itself is only durable once the directory entry is).
 */
export async function writeFileAtomic(dir: string, fileName: string, contents: string): Promise<void> {
  const temp = join(dir, `${fileName}${TEMP_MARKER}${process.pid}-${randomBytes(4).toString('hex')}`);
  const handle = await open(temp, 'wx');
  try {
    await handle.writeFile(contents, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, join(dir, fileName));
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await fsyncDirectory(dir);
}

export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Copies a file and fsyncs the copy, so a savepoint's files are durable before its metadata. */
export async function copyFileDurable(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  await copyFile(from, to);
  const handle = await open(to, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Creates `dir` (and parents) and fsyncs its parent so the new entry survives a crash. */
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
