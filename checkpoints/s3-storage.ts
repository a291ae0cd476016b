import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  asStorageError,
  CheckpointConfigError,
  CheckpointError,
  CheckpointNotFoundError,
  CheckpointStorageError,
} from './errors.ts';
import { deleteUnreferenced } from './garbage-collect.ts';
import {
  checkpointDirName,
  METADATA_FILE,
  parseCheckpointDirName,
  SAVEPOINTS_DIR,
  SHARED_DIR,
} from './local-layout.ts';
import { LocalCheckpointStorage } from './local-storage.ts';
import { assertOwnMetadata, parseMetadata, serializeMetadata } from './checkpoint-metadata.ts';
import type { CheckpointMetadata } from './checkpoint-metadata.ts';
import { assertValidName, isValidName } from './names.ts';
import { forEachLimited, type ObjectStore } from './object-store.ts';
import { isS3Url, parseS3Url, s3ConnectionFromEnv, type S3ConnectionOptions } from './s3-location.ts';
import { S3ObjectStore } from './s3-object-store.ts';
import { highestUsedId, latestCompleted } from './latest-completed.ts';
import { assertRetainCount, planRetention } from './retention-plan.ts';
import { assertSafeRelativePath } from './state-files.ts';
import type {
  CheckpointListing,
  CheckpointRef,
  CheckpointStorage,
  InvalidCheckpoint,
  RetainOptions,
  RetentionResult,
  StoredCheckpoint,
} from './storage.ts';

/** Marker object `reserve` writes so an id used by a checkpoint that never completed is never reused. */
export const RESERVED_MARKER = '_reserved';

export interface S3CheckpointStorageOptions {
  /** `s3://bucket/prefix`; the job's objects live under `<prefix>/<jobName>/`. */
  readonly url: string;
  readonly jobName: string;
  /**
   * Local root the state backends write into before upload (the job's staging folder is
   * `<stagingDirectory>/<jobName>`, which is also `fileRoot`) and restore downloads into.
   */
  readonly stagingDirectory: string;
  /** @default settings from the environment (s3-location.ts `s3ConnectionFromEnv`) */
  readonly connection?: S3ConnectionOptions;
  /** Replace the S3 client (tests). */
  readonly store?: ObjectStore;
  /** State files uploaded at once. @default 4 */
  readonly uploadConcurrency?: number;
  readonly onInvalid?: (invalid: InvalidCheckpoint) => void;
}

/**
 * `CheckpointStorage` in an S3-compatible object store (docs/object-storage.md). Layout under
 * `s3://bucket/<prefix>/<jobName>/` mirrors the local one:
 *
 *   chk-<id>/_reserved                 id marker written by `reserve`
 *   chk-<id>/_metadata                 written last: its presence is what makes the checkpoint complete
 *   shared/...                         state files (immutable; unique names), shared between checkpoints
 *   savepoints/<name>/_metadata        self-contained savepoint, with server-side copies of its files
 *
 * State backends keep writing into the local staging folder (`fileRoot`); `writeCheckpoint`
 * uploads every file the metadata references that the store lacks, then writes `_metadata`.
 */
export class S3CheckpointStorage implements CheckpointStorage {
  readonly jobName: string;
  readonly fileRoot: string;
  /** `s3://bucket/<prefix>/<jobName>`: where the job's state files live in the store. */
  readonly remoteRoot: string;
  private readonly store: ObjectStore;
  private readonly jobPrefix: string;
  private readonly concurrency: number;
  private readonly onInvalid: (invalid: InvalidCheckpoint) => void;
  /** Relative paths known to be in `shared/` remotely; filled by one listing on first use. */
  private remoteFiles: Promise<Set<string>> | undefined;

  constructor(options: S3CheckpointStorageOptions) {
    assertValidName('jobName', options.jobName);
    if (typeof options.stagingDirectory !== 'string' || options.stagingDirectory.length === 0) {
      throw new CheckpointConfigError(
        'S3 checkpoint storage needs a local "stagingDirectory" for state files before upload',
      );
    }
    const { bucket, prefix } = parseS3Url(options.url);
    this.jobName = options.jobName;
    this.fileRoot = resolve(options.stagingDirectory, options.jobName);
    this.store = options.store ?? new S3ObjectStore(bucket, options.connection ?? s3ConnectionFromEnv());
    this.jobPrefix = `${prefix === '' ? '' : `${prefix}/`}${options.jobName}/`;
    this.remoteRoot = `${this.store.url}/${this.jobPrefix.slice(0, -1)}`;
    this.concurrency = options.uploadConcurrency ?? 4;
    this.onInvalid = options.onInvalid ?? (() => undefined);
  }

  async reserve(checkpointId: number): Promise<void> {
    await this.guard(`reserve checkpoint ${checkpointId}`, () =>
      this.store.put(this.key(`${checkpointDirName(checkpointId)}/${RESERVED_MARKER}`), ''),
    );
  }

  async writeCheckpoint(metadata: CheckpointMetadata): Promise<StoredCheckpoint> {
    assertOwnMetadata(metadata, this.jobName, 'checkpoint', 'job-directory');
    const folder = checkpointDirName(metadata.checkpointId);
    return this.guard(`write checkpoint ${metadata.checkpointId}`, async () => {
      const metadataKey = this.key(`${folder}/${METADATA_FILE}`);
      await this.assertAbsent(metadataKey);
      await this.uploadStateFiles(metadata.sharedFiles);
      await this.writeMetadataLast(metadataKey, serializeMetadata(metadata));
      return this.stored(metadata, folder);
    });
  }

  async writeSavepoint(metadata: CheckpointMetadata, name: string): Promise<StoredCheckpoint> {
    assertValidName('savepoint name', name);
    assertOwnMetadata(metadata, this.jobName, 'savepoint', 'job-directory');
    const folder = `${SAVEPOINTS_DIR}/${name}`;
    return this.guard(`write savepoint "${name}"`, async () => {
      const metadataKey = this.key(`${folder}/${METADATA_FILE}`);
      await this.assertAbsent(metadataKey);
      // Objects without _metadata are a savepoint that crashed half-way: start it over.
      await this.store.delete(await this.store.list(this.key(`${folder}/`)));
      const own: CheckpointMetadata = { ...metadata, savepointName: name, fileBase: 'metadata-directory' };
      try {
        await this.uploadStateFiles(metadata.sharedFiles);
        await forEachLimited(metadata.sharedFiles, this.concurrency, (path) =>
          this.store.copy(this.key(path), this.key(`${folder}/${path}`)),
        );
        await this.writeMetadataLast(metadataKey, serializeMetadata(own));
      } catch (error) {
        await this.store
          .list(this.key(`${folder}/`))
          .then((keys) => this.store.delete(keys))
          .catch(() => undefined);
        throw error;
      }
      return this.stored(own, folder);
    });
  }

  async latestCompleted(): Promise<StoredCheckpoint | undefined> {
    return latestCompleted(await this.list());
  }

  async load(ref: CheckpointRef): Promise<StoredCheckpoint> {
    if (typeof ref === 'string' && !isS3Url(ref) && !isValidName(ref)) {
      // A local checkpoint or savepoint folder (e.g. a savepoint taken before moving to S3).
      return new LocalCheckpointStorage({ directory: resolve(this.fileRoot, '..'), jobName: this.jobName }).load(ref);
    }
    const folder = this.folderOf(ref);
    const result = await this.guard(`read ${JSON.stringify(ref)}`, () => this.read(folder));
    if ('metadata' in result) return result;
    throw new CheckpointNotFoundError(
      `cannot restore from ${JSON.stringify(ref)}: ${result.reason} at ${result.location}; ` +
        `pick another from ${this.remoteRoot} (chk-<id> or ${SAVEPOINTS_DIR}/<name>)`,
    );
  }

  async list(): Promise<CheckpointListing> {
    return this.guard('list checkpoints', async () => {
      const ids = await this.checkpointIds();
      const savepointFolders = (await this.store.listFolders(this.key(`${SAVEPOINTS_DIR}/`))).map((p) =>
        p.slice(this.jobPrefix.length, -1),
      );
      const folders: { folder: string; id?: number }[] = [
        ...ids.map((id) => ({ folder: checkpointDirName(id), id })),
        ...savepointFolders.map((folder) => ({ folder })),
      ];
      const results = new Map<string, StoredCheckpoint | InvalidCheckpoint>();
      await forEachLimited(folders, 8, async ({ folder, id }) => void results.set(folder, await this.read(folder, id)));
      const checkpoints: StoredCheckpoint[] = [];
      const savepoints: StoredCheckpoint[] = [];
      const invalid: InvalidCheckpoint[] = [];
      for (const { folder, id } of folders) {
        const result = results.get(folder) as StoredCheckpoint | InvalidCheckpoint;
        if (!('metadata' in result)) invalid.push(result);
        else (id === undefined ? savepoints : checkpoints).push(result);
      }
      for (const entry of invalid) this.onInvalid(entry);
      const sort = (a: StoredCheckpoint, b: StoredCheckpoint): number =>
        a.metadata.checkpointId - b.metadata.checkpointId;
      return { checkpoints: checkpoints.sort(sort), savepoints: savepoints.sort(sort), invalid };
    });
  }

  async highestCheckpointId(): Promise<number> {
    const ids = await this.guard('list checkpoint ids', () => this.checkpointIds());
    return highestUsedId(ids, await this.list());
  }

  async retain(keep: number, options: RetainOptions = {}): Promise<RetentionResult> {
    assertRetainCount(keep);
    return this.guard('apply retention', async () => {
      const plan = planRetention(await this.list(), keep, options);
      const { discarded, deadIds } = plan;
      // Savepoints hold their own copies; only checkpoints (and adopted savepoints) use shared/.
      const inShared = (s: StoredCheckpoint): boolean => s.metadata.fileBase === 'job-directory';
      const keeps = plan.keepsFile((s, p) => (inShared(s) ? p : undefined));
      // Metadata first: a crash mid-retention never leaves a restorable checkpoint without its files.
      await this.store.delete(
        discarded.map((s) => this.key(`${checkpointDirName(s.metadata.checkpointId)}/${METADATA_FILE}`)),
      );
      const folderKeys = [...discarded.map((s) => s.metadata.checkpointId), ...deadIds].map((id) =>
        this.key(`${checkpointDirName(id)}/`),
      );
      for (const prefix of folderKeys) await this.store.delete(await this.store.list(prefix));
      const remote = await this.knownRemoteFiles();
      const sharedKeys = await this.store.list(this.key(`${SHARED_DIR}/`));
      const deletedFiles = sharedKeys.map((k) => k.slice(this.jobPrefix.length)).filter((p) => !keeps(p));
      await this.store.delete(deletedFiles.map((p) => this.key(p)));
      for (const p of deletedFiles) remote.delete(p);
      // The staging copies of files no retained checkpoint references are not needed either.
      const keepsStaged = plan.keepsFile((s, p) => (inShared(s) ? join(this.fileRoot, p) : undefined));
      await deleteUnreferenced(join(this.fileRoot, SHARED_DIR), keepsStaged, this.fileRoot);
      return plan.result(deletedFiles);
    });
  }

  /**
   * Makes the files of `stored` (a savepoint, or a local folder) part of this job's `shared/` so
   * later incremental checkpoints can reference them: server-side copies, or uploads from a local
   * folder. Files already there are skipped.
   */
  async adoptFiles(stored: StoredCheckpoint): Promise<void> {
    if (stored.remoteFileRoot === this.remoteRoot) return;
    await this.guard(`adopt the files of ${stored.location}`, async () => {
      const remote = await this.knownRemoteFiles();
      const missing = stored.metadata.sharedFiles.filter((p) => !remote.has(p));
      const source = stored.remoteFileRoot;
      await forEachLimited(missing, this.concurrency, async (path) => {
        assertSafeRelativePath(path, (m) => this.fail(m));
        if (source === undefined) await this.store.upload(this.key(path), join(stored.fileRoot, path));
        else await this.store.copy(`${this.keyOfUrl(source)}/${path}`, this.key(path));
        remote.add(path);
      });
    });
  }

  /**
   * Uploads every listed state file the store does not have yet from the staging folder. Called
   * by `writeCheckpoint` before the metadata; public for callers whose files were written by
   * another process (each process uploads its own before acknowledging).
   */
  async uploadStateFiles(paths: readonly string[]): Promise<void> {
    const remote = await this.knownRemoteFiles();
    const missing = paths.filter((p) => !remote.has(p));
    await forEachLimited(missing, this.concurrency, async (path) => {
      assertSafeRelativePath(path, (m) => this.fail(m));
      const local = join(this.fileRoot, path);
      const present = await access(local).then(
        () => true,
        () => false,
      );
      if (!present) {
        throw new CheckpointStorageError(
          `state file ${path} is neither in ${this.remoteRoot} nor in the staging folder ${this.fileRoot}; ` +
            'was the staging folder cleaned while the job ran?',
          { retriable: false },
        );
      }
      await this.store.upload(this.key(path), local);
      remote.add(path);
    });
  }

  /** Downloads one state file into `localPath` (streamed); false if the store does not have it. */
  downloadStateFile(path: string, localPath: string, from: string = this.remoteRoot): Promise<boolean> {
    assertSafeRelativePath(path, (m) => this.fail(m));
    return this.store.download(`${this.keyOfUrl(from)}/${path}`, localPath);
  }

  /** Whether `_metadata` writes are conditional on this store (docs/object-storage.md). */
  conditionalWrites(underPrefix?: string): Promise<'supported' | 'ignored'> {
    return this.store.conditionalWrites(underPrefix);
  }

  private async writeMetadataLast(key: string, text: string): Promise<void> {
    let written: boolean;
    try {
      written = await this.store.putIfAbsent(key, text);
    } catch (error) {
      // The PUT may have landed before the error reached us (a timeout); the caller is about to
      // roll the sinks back, so the checkpoint must not stay restorable.
      await this.store.delete([key]).catch(() => undefined);
      throw error;
    }
    if (!written)
      throw new CheckpointStorageError(
        `${this.store.url}/${key} already exists; refusing to overwrite a completed checkpoint or savepoint`,
        { retriable: false },
      );
  }

  private async assertAbsent(key: string): Promise<void> {
    if (await this.store.exists(key)) {
      throw new CheckpointStorageError(
        `${this.store.url}/${key} already exists; refusing to overwrite a completed checkpoint or savepoint`,
        { retriable: false },
      );
    }
  }

  private knownRemoteFiles(): Promise<Set<string>> {
    this.remoteFiles ??= this.store.list(this.key(`${SHARED_DIR}/`)).then(
      (keys) => new Set(keys.map((k) => k.slice(this.jobPrefix.length))),
      (error: unknown) => {
        this.remoteFiles = undefined;
        throw error;
      },
    );
    return this.remoteFiles;
  }

  private async checkpointIds(): Promise<number[]> {
    const folders = await this.store.listFolders(this.jobPrefix);
    const ids = folders.map((f) => parseCheckpointDirName(f.slice(this.jobPrefix.length, -1)));
    return ids.filter((id): id is number => id !== undefined).sort((a, b) => a - b);
  }

  /** The folder (relative to the job prefix, or a full key after `//`) a ref names. */
  private folderOf(ref: CheckpointRef): string {
    if (typeof ref === 'number') return checkpointDirName(ref);
    if (!isS3Url(ref)) return `${SAVEPOINTS_DIR}/${ref}`;
    const key = this.keyOfUrl(ref.replace(/\/+$/, '')).replace(new RegExp(`/?${METADATA_FILE}$`), '');
    return key.startsWith(this.jobPrefix) ? key.slice(this.jobPrefix.length) : `//${key}`;
  }

  /** Reads one folder's `_metadata`; `expectedId` is set for this job's own `chk-<id>` folders. */
  private async read(folder: string, expectedId?: number): Promise<StoredCheckpoint | InvalidCheckpoint> {
    const folderKey = folder.startsWith('//') ? folder.slice(2) : this.key(folder);
    const location = `${this.store.url}/${folderKey}`;
    const text = await this.store.getText(`${folderKey}/${METADATA_FILE}`);
    if (text === undefined) return { location, reason: `no ${METADATA_FILE} (incomplete or missing)` };
    try {
      const metadata = parseMetadata(text, location);
      if (expectedId !== undefined) {
        if (metadata.checkpointId !== expectedId)
          return { location, reason: `holds checkpoint ${metadata.checkpointId}, not ${expectedId}` };
        if (metadata.jobName !== this.jobName) return { location, reason: `belongs to job "${metadata.jobName}"` };
      }
      // A checkpoint of another lineage (a group-mode claim restores the previous epoch's, under
      // its own job root) references files under that root: its `chk-<id>` folder's parent.
      const jobRoot = folder.startsWith('//') ? location.slice(0, location.lastIndexOf('/')) : this.remoteRoot;
      const remoteFileRoot = metadata.fileBase === 'metadata-directory' ? location : jobRoot;
      return { metadata, location, fileRoot: this.fileRoot, remoteFileRoot };
    } catch (error) {
      return { location, reason: error instanceof Error ? error.message : String(error) };
    }
  }

  private stored(metadata: CheckpointMetadata, folder: string): StoredCheckpoint {
    const location = `${this.remoteRoot}/${folder}`;
    return {
      metadata,
      location,
      fileRoot: this.fileRoot,
      remoteFileRoot: metadata.fileBase === 'metadata-directory' ? location : this.remoteRoot,
    };
  }

  private key(relative: string): string {
    return `${this.jobPrefix}${relative}`;
  }

  /** The key prefix of an `s3://` URL in this storage's bucket. */
  private keyOfUrl(url: string): string {
    const { bucket, prefix } = parseS3Url(url);
    if (`s3://${bucket}` !== this.store.url) {
      throw new CheckpointConfigError(
        `${url} is in another bucket than ${this.store.url}; copy it into ${this.remoteRoot}/${SAVEPOINTS_DIR}/ first`,
      );
    }
    return prefix;
  }

  private fail(message: string): never {
    throw new CheckpointError(`${this.remoteRoot}: ${message}`);
  }

  private guard<T>(what: string, work: () => Promise<T>): Promise<T> {
    return asStorageError(
      work,
      (error) =>
        `cannot ${what} in ${this.remoteRoot}: ${String(error)}; check CDCFLOW_S3_ENDPOINT, the credentials and the bucket`,
    );
  }
}
