/**
 * The checkpoint storage contract against a real S3-compatible server (S3Proxy in the stack,
 * MinIO with docker compose). Skips, saying so, when CDCFLOW_S3_ENDPOINT is unset.
 */
import { expect, it } from 'vitest';
import { S3ObjectStore } from '../../checkpoints/s3-object-store.ts';
import { s3ConnectionFromEnv } from '../../checkpoints/s3-location.ts';
import { S3CheckpointStorage } from '../../checkpoints/s3-storage.ts';
import type { InvalidCheckpoint } from '../../checkpoints/storage.ts';
import { describeCheckpointStorageContract } from '../support/checkpoint-storage-contract.ts';
import { uniqueName } from '../support/endpoints.ts';
import { makeTempDir } from '../unit/checkpoints/helpers.ts';

const endpoint = process.env['CDCFLOW_S3_ENDPOINT'];
const bucket = process.env['CDCFLOW_S3_BUCKET'] ?? 'cdcflow';
const skip =
  endpoint === undefined
    ? 'CDCFLOW_S3_ENDPOINT is not set; `npm run stack -- up s3proxy` starts S3Proxy on 127.0.0.1:19000'
    : undefined;

describeCheckpointStorageContract(
  `S3 at ${endpoint ?? '(none)'}`,
  async (jobName) => {
    const { dir, cleanup } = await makeTempDir();
    const prefix = uniqueName('contract');
    const store = new S3ObjectStore(bucket, s3ConnectionFromEnv());
    const invalid: InvalidCheckpoint[] = [];
    const storage = new S3CheckpointStorage({
      url: `s3://${bucket}/${prefix}`,
      jobName,
      stagingDirectory: dir,
      store,
      onInvalid: (i) => invalid.push(i),
    });
    return {
      storage,
      invalid,
      stateFileKept: (path) => store.exists(`${prefix}/${jobName}/${path}`),
      cleanup: async () => {
        await store.delete(await store.list(`${prefix}/`));
        await store.destroy();
        await cleanup();
      },
    };
  },
  skip === undefined ? {} : { skip },
);

it.skipIf(skip !== undefined)(
  'reports whether the server honours If-None-Match (S3Proxy 2.6 does not, MinIO does)',
  async () => {
    const store = new S3ObjectStore(bucket, s3ConnectionFromEnv());
    try {
      expect(['supported', 'ignored']).toContain(await store.conditionalWrites());
    } finally {
      await store.destroy();
    }
  },
);
