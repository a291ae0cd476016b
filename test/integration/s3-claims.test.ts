/**
 * Group-mode partition claims under `s3://` against real S3 servers: the claim store's contract on
 * the stack's conditional-write store (S3Proxy 4.1.0 on 19100, CDCFLOW_S3_CONDITIONAL_ENDPOINT),
 * with claimants on separate clients racing; and the start-up probe refusing the stack's S3Proxy
 * 2.6.0 (CDCFLOW_S3_ENDPOINT), which ignores If-None-Match. Each part skips without its endpoint.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { s3ConnectionFromEnv } from '../../checkpoints/s3-location.ts';
import { S3ObjectStore } from '../../checkpoints/s3-object-store.ts';
import { openClaimStore } from '../../runtime/group/claim-store-for.ts';
import { runGroupJob } from '../../runtime/group/group-job.ts';
import { ClaimStoreCannotFenceError, S3ClaimStore } from '../../runtime/group/s3-claim-store.ts';
import { claimStoreContract } from '../support/claim-store-contract.ts';
import { uniqueName } from '../support/endpoints.ts';

const conditional = process.env['CDCFLOW_S3_CONDITIONAL_ENDPOINT'];
const plain = process.env['CDCFLOW_S3_ENDPOINT'];
const bucket = process.env['CDCFLOW_S3_BUCKET'] ?? 'cdcflow';
const prefix = uniqueName('it-s3-claims');
const connectionTo = (endpoint: string) => ({ ...s3ConnectionFromEnv(), endpoint });
const stores: S3ObjectStore[] = [];
const storeAt = (endpoint: string): S3ObjectStore => {
  const store = new S3ObjectStore(bucket, connectionTo(endpoint));
  stores.push(store);
  return store;
};

afterAll(async () => {
  for (const endpoint of [conditional, plain]) {
    if (endpoint === undefined) continue;
    const store = storeAt(endpoint);
    await store.delete(await store.list(`${prefix}/`)).catch(() => undefined);
  }
  await Promise.all(stores.map((s) => s.destroy()));
});

let next = 0;
describe.skipIf(conditional === undefined)(
  'S3 claim store on a store that honours If-None-Match (skipped without CDCFLOW_S3_CONDITIONAL_ENDPOINT)',
  () => {
    const objects = conditional === undefined ? undefined : storeAt(conditional);
    claimStoreContract({
      objects: () => objects as S3ObjectStore,
      root: () => `s3://${bucket}/${prefix}/contract-${(next += 1)}`,
    });

    it('8 claimants on their own connections, 5 rounds: every epoch is won exactly once', async () => {
      const root = `s3://${bucket}/${prefix}/race`;
      const claimants = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          S3ClaimStore.open({
            root,
            jobName: 'job',
            objects: storeAt(conditional as string),
            owner: `claimant-${i}`,
            latestCompleted: () => Promise.resolve(undefined),
          }),
        ),
      );
      const epochs: number[] = [];
      for (let round = 0; round < 5; round++)
        epochs.push(...(await Promise.all(claimants.map((c) => c.claim('job.t-0', 't', 0)))).map((c) => c.epoch));
      expect(epochs.sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    });

    it('opens through the checkpoint root (the probe passes)', async () => {
      const opened = await openClaimStore(`s3://${bucket}/${prefix}/open`, 'job', connectionTo(conditional as string));
      try {
        expect((await opened.store.claim('job.t-0', 't', 0)).epoch).toBe(1);
      } finally {
        await opened.close();
      }
    });
  },
);

it.skipIf(plain === undefined || plain !== 'http://127.0.0.1:19000')(
  "refuses the stack's S3Proxy 2.6.0 for group-mode claims: it ignores If-None-Match (skipped without it)",
  async () => {
    const opening = openClaimStore(`s3://${bucket}/${prefix}/plain`, 'job', connectionTo(plain as string));
    await expect(opening).rejects.toBeInstanceOf(ClaimStoreCannotFenceError);
    await expect(opening).rejects.toThrow(/ignores If-None-Match: \*.*S3Proxy 2\.6\.0/);
  },
);

it.skipIf(plain === undefined || plain !== 'http://127.0.0.1:19000')(
  'a group job with its checkpoint root in S3Proxy 2.6.0 fails before it joins the group (skipped without it)',
  async () => {
    const lines: string[] = [];
    const running = runGroupJob({
      jobName: 'claims-refused',
      topics: [uniqueName('never-read')],
      environment: { checkpoints: { dir: `s3://${bucket}/${prefix}/refused` } },
      handleSignals: false,
      log: (line) => lines.push(line),
      build: () => undefined,
    });
    await expect(running).rejects.toBeInstanceOf(ClaimStoreCannotFenceError);
    expect(lines.filter((l) => l.startsWith('joined consumer group'))).toEqual([]);
  },
);
