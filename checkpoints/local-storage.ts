import { readdir, readFile, rm, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { asStorageError, CheckpointConfigError, CheckpointNotFoundError, CheckpointStorageError } from './errors.ts';
import { copyFileDurable, mkdirDurable, writeFileDurably } from '../state/durable-fs.ts';
import { deleteUnreferenced, isNotFound } from './garbage-collect.ts';
import {
  checkpointDirName,
  METADATA_FILE,
  parseCheckpointDirName,
  SAVEPOINTS_DIR,
  SHARED_DIR,
} from './local-layout.ts';
import { assertValidName, isValidName } from './names.ts';
import { assertOwnMetadata, parseMetadata, serializeMetadata } from './checkpoint-metadata.ts';
import type { CheckpointMetadata } from './checkpoint-metadata.ts';
import type {
  CheckpointListing,
  CheckpointRef,
  CheckpointStorage,
  InvalidCheckpoint,
  RetainOptions,
  RetentionResult,
  StoredCheckpoint,
} from './storage.ts';
import { highestUsedId, latestCompleted } from './latest-completed.ts';
import { assertRetainCount, planRetention } from './retention-plan.ts';

export interface LocalCheckpointStorageOptions {
  /** Root directory; the job's checkpoints live in `<directory>/<jobName>/`. */
  readonly directory: string;
  readonly jobName: string;
  /** Told about every incomplete or corrupt checkpoint directory skipped while reading. @default ignore */
  readonly onInvalid?: (invalid: InvalidCheckpoint) => void;
}

/** `CheckpointStorage` on a local (or mounted network) filesystem. See `local-layout.ts`. */
export class LocalCheckpointStorage implements CheckpointStorage {
  readonly jobName: string;
  readonly fileRoot: string;
  private readonly onInvalid: (invalid: InvalidCheckpoint) => void;

  constructor(options: LocalCheckpointStorageOptions) {
    if (typeof options.directory !== 'string' || options.directory.length === 0) {
      throw new CheckpointConfigError('checkpoint storage "directory" must be a non-empty path');
    }
    assertValidName('jobName', options.jobName);
    this.jobName = options.jobName;
    this.fileRoot = resolve(options.directory, options.jobName);
    this.onInvalid = options.onInvalid ?? (() => undefined);
  }

  async reserve(checkpointId: number): Promise<void> {
    await this.guard(`reserve checkpoint ${checkpointId}`, () =>
      mkdirDurable(join(this.fileRoot, checkpointDirName(checkpointId))),
    );
  }

  async writeCheckpoint(metadata: CheckpointMetadata): Promise<StoredCheckpoint> {
    assertOwnMetadata(metadata, this.jobName, 'checkpoint', 'job-directory');
    const location = join(this.fileRoot, checkpointDirName(metadata.checkpointId));
    return this.guard(`write checkpoint ${metadata.checkpointId}`, async () => {
      await mkdirDurable(location);
      await assertAbsent(join(location, METADATA_FILE));
      await unrestorableOnFailure(location, false, () =>
        writeFileDurably(join(location, METADATA_FILE), serializeMetadata(metadata)),
      );
      return { metadata, location, fileRoot: this.fileRoot };
    });
  }

  async writeSavepoint(metadata: CheckpointMetadata, name: string): Promise<StoredCheckpoint> {
    assertValidName('savepoint name', name);
    assertOwnMetadata(metadata, this.jobName, 'savepoint', 'job-directory');
    const location = join(this.fileRoot, SAVEPOINTS_DIR, name);
    return this.guard(`write savepoint "${name}"`, async () => {
      await assertAbsent(join(location, METADATA_FILE));
      // A directory without _metadata is a savepoint that crashed half-way: start it over.
      await rm(location, { recursive: true, force: true });
      const own: CheckpointMetadata = { ...metadata, savepointName: name, fileBase: 'metadata-directory' };
      await unrestorableOnFailure(location, true, async () => {
        await mkdirDurable(location);
        // Paths stay the same strings; only their base moves from the job dir to the savepoint dir.
        for (const path of metadata.sharedFiles) await copyFileDurable(join(this.fileRoot, path), join(location, path));
        await writeFileDurably(join(location, METADATA_FILE), serializeMetadata(own));
      });
      return { metadata: own, location, fileRoot: location };
    });
  }

  async latestCompleted(): Promise<StoredCheckpoint | undefined> {
    return latestCompleted(await this.list());
  }

  async load(ref: CheckpointRef): Promise<StoredCheckpoint> {
    const location = this.locate(ref);
    const result = await this.read(location);
    if ('metadata' in result) return result;
    throw new CheckpointNotFoundError(
      `cannot restore from ${JSON.stringify(ref)}: ${result.reason} at ${location}; ` +
        `pick another from ${this.fileRoot} (chk-<id> or ${SAVEPOINTS_DIR}/<name>)`,
    );
  }

  async list(): Promise<CheckpointListing> {
    const checkpoints: StoredCheckpoint[] = [];
    const savepoints: StoredCheckpoint[] = [];
    const invalid: InvalidCheckpoint[] = [];
    const sort = (a: StoredCheckpoint, b: StoredCheckpoint): number =>
      a.metadata.checkpointId - b.metadata.checkpointId;
    for (const id of await this.checkpointDirIds()) {
      const result = await this.read(join(this.fileRoot, checkpointDirName(id)), id);
      if ('metadata' in result) checkpoints.push(result);
      else invalid.push(result);
    }
    for (const name of await listDirs(join(this.fileRoot, SAVEPOINTS_DIR))) {
      const result = await this.read(join(this.fileRoot, SAVEPOINTS_DIR, name));
      if ('metadata' in result) savepoints.push(result);
      else invalid.push(result);
    }
    for (const entry of invalid) this.onInvalid(entry);
    return { checkpoints: checkpoints.sort(sort), savepoints: savepoints.sort(sort), invalid };
  }

  async highestCheckpointId(): Promise<number> {
    const ids = await this.checkpointDirIds();
    return highestUsedId(ids, await this.list());
  }

  async retain(keep: number, options: RetainOptions = {}): Promise<RetentionResult> {
    assertRetainCount(keep);
    return this.guard('apply retention', async () => {
      const plan = planRetention(await this.list(), keep, options);
      const { discarded, deadIds } = plan;
      const keep_ = plan.keepsFile((s, p) => join(s.fileRoot, p));
      // Metadata goes first so a crash mid-retention never leaves a restorable checkpoint whose
      // files are already gone; leftover files are collected by the next run.
      for (const s of discarded) await rm(join(s.location, METADATA_FILE), { force: true });
      const deletedFiles: string[] = [];
      for (const dir of [
        ...discarded.map((s) => s.location),
        ...deadIds.map((id) => join(this.fileRoot, checkpointDirName(id))),
      ]) {
        deletedFiles.push(...(await deleteUnreferenced(dir, keep_, this.fileRoot)));
        // Only removable once empty: a retained checkpoint may still reference a file in it.
        await rmdir(dir).catch(() => undefined);
      }
      deletedFiles.push(...(await deleteUnreferenced(join(this.fileRoot, SHARED_DIR), keep_, this.fileRoot)));
      return plan.result(deletedFiles);
    });
  }

  private locate(ref: CheckpointRef): string {
    if (typeof ref === 'number') return join(this.fileRoot, checkpointDirName(ref));
    if (isValidName(ref)) return join(this.fileRoot, SAVEPOINTS_DIR, ref);
    const path = resolve(ref);
    return basename(path) === METADATA_FILE ? dirname(path) : path;
  }

  /** Reads one directory's metadata; `expectedId` is set for this job's own `chk-<id>` dirs. */
  private async read(location: string, expectedId?: number): Promise<StoredCheckpoint | InvalidCheckpoint> {
    let text: string;
    try {
      text = await readFile(join(location, METADATA_FILE), 'utf8');
    } catch (error) {
      if (isNotFound(error)) return { location, reason: `no ${METADATA_FILE} (incomplete or missing)` };
      throw new CheckpointStorageError(`cannot read ${join(location, METADATA_FILE)}: ${String(error)}`, {
        cause: error,
      });
    }
    try {
      const metadata = parseMetadata(text, location);
      if (expectedId !== undefined) {
        if (metadata.checkpointId !== expectedId)
          return { location, reason: `holds checkpoint ${metadata.checkpointId}, not ${expectedId}` };
        if (metadata.jobName !== this.jobName) return { location, reason: `belongs to job "${metadata.jobName}"` };
      }
      const fileRoot = metadata.fileBase === 'metadata-directory' ? location : dirname(location);
      return { metadata, location, fileRoot };
    } catch (error) {
      return { location, reason: error instanceof Error ? error.message : String(error) };
    }
  }

  private async checkpointDirIds(): Promise<number[]> {
    const ids = (await listDirs(this.fileRoot)).map(parseCheckpointDirName);
    return ids.filter((id): id is number => id !== undefined).sort((a, b) => a - b);
  }

  private guard<T>(what: string, work: () => Promise<T>): Promise<T> {
    return asStorageError(
      work,
      (error) => `cannot ${what} under ${this.fileRoot}: ${String(error)}; check disk space and permissions`,
    );
  }
}

/**
 * Runs a write; if it fails, removes the `_metadata` it may already have renamed into place (e.g.
 * the directory fsync failed afterwards), because the caller is about to tell sinks to roll back
 * and the attempt must never be restored. `wholeDir` also removes a half-written savepoint.
 */
async function unrestorableOnFailure(location: string, wholeDir: boolean, write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (error) {
    await rm(join(location, METADATA_FILE), { force: true }).catch(() => undefined);
    if (wholeDir) await rm(location, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
}

async function assertAbsent(path: string): Promise<void> {
  const exists = await stat(path).then(
    () => true,
    (error: unknown) => (isNotFound(error) ? false : Promise.reject(error)),
  );
  if (exists) {
    throw new CheckpointStorageError(
      `${path} already exists; refusing to overwrite a completed checkpoint or savepoint`,
      {
        retriable: false,
      },
    );
  }
}

async function listDirs(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
}
