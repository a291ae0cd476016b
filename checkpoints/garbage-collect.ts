import { readdir, rm, rmdir } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** Directory nesting deeper than this is not something we wrote; refuse to walk it forever. */
const MAX_DEPTH = 16;

/**
 * Deletes every file under `dir` whose absolute path `keep` refuses, then removes directories
 * left empty. Returns the deleted files relative to `reportBase`. A missing `dir` is not an error.
 */
export async function deleteUnreferenced(
  dir: string,
  keep: ReadonlySet<string> | ((path: string) => boolean),
  reportBase: string,
): Promise<string[]> {
  const deleted: string[] = [];
  await sweep(dir, typeof keep === 'function' ? keep : (path) => keep.has(path), reportBase, deleted, 0);
  return deleted;
}

/** Returns true if `dir` is empty afterwards (and was removed, unless it is the root). */
async function sweep(
  dir: string,
  keep: (path: string) => boolean,
  base: string,
  deleted: string[],
  depth: number,
): Promise<boolean> {
  if (depth > MAX_DEPTH) return false;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (isNotFound(error)) return true;
    throw error;
  }
  let remaining = entries.length;
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (await sweep(path, keep, base, deleted, depth + 1)) remaining -= 1;
    } else if (!keep(path)) {
      await rm(path, { force: true });
      deleted.push(relative(base, path));
      remaining -= 1;
    }
  }
  if (remaining > 0) return false;
  if (depth > 0) await rmdir(dir).catch(() => undefined);
  return true;
}

export function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ENOENT';
}
