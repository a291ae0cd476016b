/**
 * Keyed state handles are opaque to this layer, except for one convention shared with `state/`:
 * a handle (or any object nested in it) may carry `files: { path: string, ... }[]`, paths relative
 * to the file base of the checkpoint. Retention must see every such path, so they are found by
 * walking the handle rather than by trusting a separate list kept by hand.
 */

/** Nesting deeper than this is not a state handle; stop rather than recurse without bound. */
const MAX_DEPTH = 32;

/** Every `files[].path` string found anywhere inside `handle`, in discovery order. */
export function referencedFiles(handle: unknown): string[] {
  const found: string[] = [];
  walk(handle, 0, found);
  return found;
}

function walk(value: unknown, depth: number, found: string[]): void {
  if (depth > MAX_DEPTH || typeof value !== 'object' || value === null) return;
  if (Array.isArray(value)) {
    for (const item of value) walk(item, depth + 1, found);
    return;
  }
  const record = value as Record<string, unknown>;
  const files = record['files'];
  if (Array.isArray(files)) {
    for (const file of files) {
      if (typeof file === 'object' && file !== null && typeof (file as Record<string, unknown>)['path'] === 'string') {
        found.push((file as Record<string, string>)['path'] as string);
      }
    }
  }
  for (const [key, nested] of Object.entries(record)) {
    if (key !== 'files') walk(nested, depth + 1, found);
  }
}

/**
 * Rejects paths that could escape the checkpoint folder or differ only in spelling: absolute,
 * `..`/`.` segments, backslashes, empty segments. A path that passes is safe to join to a base dir.
 */
export function assertSafeRelativePath(path: string, fail: (message: string) => never): void {
  const segments = path.split('/');
  const bad =
    path.length === 0 ||
    path.includes('\\') ||
    path.includes('\0') ||
    segments.some((s) => s === '' || s === '.' || s === '..');
  if (bad)
    fail(`state file path ${JSON.stringify(path)} must be relative, use "/" and contain no "", "." or ".." segments`);
}

const CHECKPOINT_FILE = /^chk-(\d+)-/;

/**
 * The checkpoint a state file was written for, from its name: `state/` names every snapshot file
 * `chk-<id>-<kind>-<random>.bin` (a published rebase gets the id of the checkpoint that first
 * lists it), temp files included. Retention running beside checkpoints in flight keeps files
 * whose id is above the newest completed checkpoint. Undefined for any other name.
 */
export function stateFileCheckpointId(path: string): number | undefined {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const match = CHECKPOINT_FILE.exec(name);
  return match === null ? undefined : Number(match[1]);
}
