/**
 * The contract of the S3 partition claim store (runtime/group/s3-claim-store.ts), run against any
 * `VersionedObjects`: the in-memory store in unit tests, a real conditional-write S3 server in
 * test/integration/s3-claims.test.ts.
 */
import { expect, it } from 'vitest';
import { S3ClaimStore, type ClaimObjects } from '../../runtime/group/s3-claim-store.ts';

export interface ClaimStoreContractTarget {
  /** The bucket's store; `root` below is in this bucket. */
  objects(): ClaimObjects;
  /** A fresh `s3://bucket/prefix` for each case. */
  root(): string;
}

export function claimStoreContract(target: ClaimStoreContractTarget): void {
  const open = (root: string, owner: string, latest: Map<string, string> = new Map()) =>
    S3ClaimStore.open({
      root,
      jobName: 'job',
      objects: target.objects(),
      owner,
      latestCompleted: (directory, taskJobName) => Promise.resolve(latest.get(`${directory}|${taskJobName}`)),
    });

  it('gives every claim the next epoch, its own folder, and chooses the restore point at claim time', async () => {
    const root = target.root();
    const latest = new Map<string, string>();
    const store = await open(root, 'a', latest);
    expect(await store.newest('t', 3)).toBeUndefined();
    const first = await store.claim('job.t-3', 't', 3);
    expect(first).toMatchObject({ epoch: 1, owner: 'a', restoreFrom: undefined });
    expect(first.directory).toBe(`${root}/job/partitions/t-3/epoch-000001`);
    // Nothing completed in epoch 1: epoch 2 starts from epoch 1's base (nothing).
    const second = await store.claim('job.t-3', 't', 3);
    expect(second).toMatchObject({ epoch: 2, restoreFrom: undefined });
    // Epoch 2 completed a checkpoint: epoch 3 restores it, and epoch 4 inherits it as its base
    // when epoch 3 completed nothing.
    latest.set(`${second.directory}|job.t-3`, `${second.directory}/job.t-3/chk-8589934593`);
    const third = await store.claim('job.t-3', 't', 3);
    expect(third.restoreFrom).toBe(`${second.directory}/job.t-3/chk-8589934593`);
    const fourth = await store.claim('job.t-3', 't', 3);
    expect(fourth).toMatchObject({ epoch: 4, restoreFrom: `${second.directory}/job.t-3/chk-8589934593` });
    const newest = await store.newest('t', 3);
    expect(newest?.epoch).toBe(4);
    expect(await store.newest('t', 2)).toBeUndefined();
  });

  it('two claimants racing for a partition: exactly one wins each epoch', async () => {
    const root = target.root();
    const [a, b] = await Promise.all([open(root, 'a'), open(root, 'b')]);
    for (let round = 0; round < 3; round++) {
      const claims = await Promise.all([a.claim('job.t-0', 't', 0), b.claim('job.t-0', 't', 0)]);
      const epochs = claims.map((c) => c.epoch).sort((x, y) => x - y);
      expect(epochs).toEqual([2 * round + 1, 2 * round + 2]);
      expect(new Set(claims.map((c) => c.owner))).toEqual(new Set(['a', 'b']));
    }
    // Five at once, each its own epoch.
    const many = await Promise.all(['c', 'd', 'e', 'f', 'g'].map((o) => open(root, o)));
    const claims = await Promise.all(many.map((s) => s.claim('job.t-0', 't', 0)));
    expect(claims.map((c) => c.epoch).sort((x, y) => x - y)).toEqual([7, 8, 9, 10, 11]);
    expect((await a.newest('t', 0))?.epoch).toBe(11);
  });

  it("a stale claimant's claim fails: the epoch it read as next was created by another", async () => {
    const root = target.root();
    const objects = target.objects();
    const a = await open(root, 'a');
    await a.claim('job.t-1', 't', 1);
    // `a` saw epoch 1 as the newest; `b` claims epoch 2 before `a` writes it.
    const won = await (await open(root, 'b')).claim('job.t-1', 't', 1);
    expect(won.epoch).toBe(2);
    const key = `${root.slice(`${objects.url}/`.length)}/job/partitions/t-1/epoch-000002/claim.json`;
    const stale = JSON.stringify({ epoch: 2, owner: 'a', claimedAtMs: Date.now(), base: null });
    expect(await objects.putIfAbsent(key, stale)).toBe(false);
    expect(JSON.parse((await objects.getText(key)) as string)).toMatchObject({ epoch: 2, owner: 'b' });
    // Claiming again, it gets the epoch after the winner's.
    expect((await a.claim('job.t-1', 't', 1)).epoch).toBe(3);
    expect((await a.newest('t', 1))?.epoch).toBe(3);
  });
}
