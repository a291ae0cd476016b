import { describe, expect, it } from 'vitest';
import { ClaimStoreCannotFenceError, S3ClaimStore } from '../../../runtime/group/s3-claim-store.ts';
import { claimStoreContract } from '../../support/claim-store-contract.ts';
import { MemoryObjectStore } from '../../support/memory-object-store.ts';

let next = 0;
describe('S3 claim store on a store that honours If-None-Match (in memory)', () => {
  const objects = new MemoryObjectStore('supported');
  claimStoreContract({ objects: () => objects, root: () => `s3://memory-bucket/claims-${(next += 1)}` });
});

describe('S3 claim store probe', () => {
  it('refuses a store that ignores If-None-Match (S3Proxy 2.6), naming what to use instead', async () => {
    const opening = S3ClaimStore.open({
      root: 's3://memory-bucket/p',
      jobName: 'job',
      objects: new MemoryObjectStore('ignored'),
      latestCompleted: () => Promise.resolve(undefined),
    });
    await expect(opening).rejects.toBeInstanceOf(ClaimStoreCannotFenceError);
    await expect(opening).rejects.toThrow(/ignores If-None-Match: \*.*S3Proxy 2\.6\.0.*MinIO/);
  });
});
