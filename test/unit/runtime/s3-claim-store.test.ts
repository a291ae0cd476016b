import { ObjectStoreAccessError, objectStoreAccessError } from '../../../checkpoints/s3-object-store.ts';
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

  it('probes under the job’s own prefix, where prefix-scoped credentials may write', async () => {
    const objects = new MemoryObjectStore('supported');
    const asked: (string | undefined)[] = [];
    const probe = objects.conditionalWrites.bind(objects);
    objects.conditionalWrites = (underPrefix?: string) => {
      asked.push(underPrefix);
      return probe(underPrefix);
    };
    await S3ClaimStore.open({
      root: 's3://memory-bucket/team-a/checkpoints',
      jobName: 'job',
      objects,
      latestCompleted: () => Promise.resolve(undefined),
    });
    expect(asked).toEqual(['team-a/checkpoints/job/']);
  });
});

describe('objectStoreAccessError', () => {
  const sdkError = (name: string, status: number) =>
    Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

  it('says what to fix for a denied prefix, a missing bucket and refused credentials', () => {
    const denied = objectStoreAccessError(sdkError('AccessDenied', 403), 'b', 'team-a/job/');
    expect(denied).toBeInstanceOf(ObjectStoreAccessError);
    expect(denied?.message).toMatch(/access denied writing under s3:\/\/b\/team-a\/job\/.*s3:PutObject/);
    expect(objectStoreAccessError(sdkError('NoSuchBucket', 404), 'b', '')?.message).toMatch(
      /bucket 'b' does not exist/,
    );
    expect(objectStoreAccessError(sdkError('InvalidAccessKeyId', 403), 'b', 'p/')?.message).toMatch(
      /refused our credentials \(InvalidAccessKeyId\).*AWS_ACCESS_KEY_ID/,
    );
  });

  it('leaves other failures as they are (a timeout is not a permission problem)', () => {
    expect(objectStoreAccessError(sdkError('TimeoutError', 0), 'b', 'p/')).toBeUndefined();
  });
});
