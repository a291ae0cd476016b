import { tmpdir } from 'node:os';
import { localCheckpointPath } from '../../checkpoints/checkpoint-storage-for.ts';
import { isS3Url, parseS3Url, s3ConnectionFromEnv, type S3ConnectionOptions } from '../../checkpoints/s3-location.ts';
import { S3ObjectStore } from '../../checkpoints/s3-object-store.ts';
import { S3CheckpointStorage } from '../../checkpoints/s3-storage.ts';
import { PosixClaimStore, type PartitionClaimStore } from './partition-claims.ts';
import { S3ClaimStore } from './s3-claim-store.ts';

export interface OpenedClaimStore {
  readonly store: PartitionClaimStore;
  /** Releases the store's connections (S3 client); the POSIX store has none. */
  close(): Promise<void>;
}

/**
 * The claim store a checkpoint root names: `s3://…` is S3 claims by conditional writes (probed
 * first: `ClaimStoreCannotFenceError` on a store that ignores them), anything else the POSIX one.
 */
export async function openClaimStore(
  root: string,
  jobName: string,
  connection: S3ConnectionOptions = s3ConnectionFromEnv(),
): Promise<OpenedClaimStore> {
  if (!isS3Url(root)) return { store: new PosixClaimStore(localCheckpointPath(root), jobName), close: async () => {} };
  const objects = new S3ObjectStore(parseS3Url(root).bucket, connection);
  try {
    const store = await S3ClaimStore.open({
      root,
      jobName,
      objects,
      // Listing needs no staging folder; the storage is only read here.
      latestCompleted: async (directory, taskJobName) =>
        (
          await new S3CheckpointStorage({
            url: directory,
            jobName: taskJobName,
            stagingDirectory: tmpdir(),
            store: objects,
          }).latestCompleted()
        )?.location,
    });
    return { store, close: () => objects.destroy() };
  } catch (error) {
    await objects.destroy();
    throw error;
  }
}
