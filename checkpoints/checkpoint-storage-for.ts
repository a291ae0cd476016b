import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CheckpointConfigError } from './errors.ts';
import { LocalCheckpointStorage } from './local-storage.ts';
import { isS3Url, parseS3Url, type S3ConnectionOptions } from './s3-location.ts';
import { S3CheckpointStorage } from './s3-storage.ts';
import type { CheckpointStorage, InvalidCheckpoint } from './storage.ts';

export interface CheckpointStorageChoice {
  /** A local path, `file:///path`, or `s3://bucket/prefix`. */
  readonly root: string;
  readonly jobName: string;
  /** Local root for state files before upload (object stores only); the job uses `<staging>/<jobName>`. */
  readonly stagingDirectory?: string;
  readonly connection?: S3ConnectionOptions;
  readonly onInvalid?: (invalid: InvalidCheckpoint) => void;
}

/** The checkpoint storage a root names: `s3://…` is an object store, anything else the local filesystem. */
export function checkpointStorageFor(choice: CheckpointStorageChoice): CheckpointStorage {
  const onInvalid = choice.onInvalid === undefined ? {} : { onInvalid: choice.onInvalid };
  if (isS3Url(choice.root)) {
    if (choice.stagingDirectory === undefined)
      throw new CheckpointConfigError(`checkpoints in ${choice.root} need a local staging directory for state files`);
    return new S3CheckpointStorage({
      url: choice.root,
      jobName: choice.jobName,
      stagingDirectory: choice.stagingDirectory,
      ...(choice.connection === undefined ? {} : { connection: choice.connection }),
      ...onInvalid,
    });
  }
  return new LocalCheckpointStorage({
    directory: localCheckpointPath(choice.root),
    jobName: choice.jobName,
    ...onInvalid,
  });
}

/** A local root from a plain path or a `file://` URL; throws for other URL schemes. */
export function localCheckpointPath(root: string): string {
  if (root.startsWith('file:')) return fileURLToPath(root);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(root)?.[1];
  if (scheme !== undefined)
    throw new CheckpointConfigError(
      `checkpoint root ${root}: unknown scheme "${scheme}://"; use a path, file:// or s3://bucket/prefix`,
    );
  return resolve(root);
}

/** Checks an `s3://` root early (at option resolution), so a typo fails before the job starts. */
export function validateCheckpointRoot(root: string): void {
  if (isS3Url(root)) parseS3Url(root);
  else localCheckpointPath(root);
}
