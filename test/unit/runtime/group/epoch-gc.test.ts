/**
 * Which owner epochs of a partition may be deleted (runtime/group/epoch-gc.ts), and the S3 claim
 * store applying it (claim record last).
 */
import { describe, expect, it } from 'vitest';
import { EpochGcGrace, epochOfLocation, supersededEpochs } from '../../../../runtime/group/epoch-gc.ts';
import { S3ClaimStore } from '../../../../runtime/group/s3-claim-store.ts';
import { MemoryObjectStore } from '../../../support/memory-object-store.ts';

const facts = (
  ...list: [epoch: number, completed: boolean, restoresFromEpoch?: number | undefined, claimed?: boolean][]
) =>
  list.map(([epoch, completed, restoresFromEpoch, claimed]) => ({
    epoch,
    completed,
    restoresFromEpoch,
    claimed: claimed ?? true,
  }));

describe('supersededEpochs', () => {
  it('deletes every epoch older than the newest one with a completed checkpoint', () => {
    expect(supersededEpochs(facts([1, true], [2, true, 1], [3, true, 2]))).toEqual([1, 2]);
  });

  it('keeps an older epoch while a newer claim without checkpoints restores from it', () => {
    // Epoch 4 was claimed while 3 had completed nothing: it restores from 2, and 4's owner has not
    // completed a checkpoint yet; 3 completed one since.
    expect(supersededEpochs(facts([1, true], [2, true, 1], [3, true, 2], [4, false, 2]))).toEqual([1]);
  });

  it('deletes nothing while no epoch has completed a checkpoint, and never the newest completed', () => {
    expect(supersededEpochs(facts([1, false], [2, false]))).toEqual([]);
    expect(supersededEpochs(facts([1, true], [2, false, 1], [3, false, 1]))).toEqual([]);
  });

  it('deletes nothing while a newer claimant has not written its record (it may be restoring from any epoch)', () => {
    // POSIX: epoch 4's folder exists, its claimant read its restore point (epoch 2, as 3 had
    // completed nothing then) and has not written claim.json yet; 3 has completed one since.
    expect(supersededEpochs(facts([1, true], [2, true, 1], [3, true, 2], [4, false, undefined, false]))).toEqual([]);
  });

  it('reads the epoch off a restore location', () => {
    expect(epochOfLocation('s3://b/p/job/partitions/t-0/epoch-000003/job.t-0/chk-12884901890')).toBe(3);
    expect(epochOfLocation('/ckpt/job/partitions/t-0/epoch-000012/job.t-0/chk-5')).toBe(12);
    expect(epochOfLocation(null)).toBeUndefined();
  });
});

describe('EpochGcGrace', () => {
  it('settles a newest completed epoch only once it has been seen for the grace period', () => {
    let now = 1_000;
    const grace = new EpochGcGrace(300_000, () => now);
    expect(grace.settled('t-0', 3)).toBe(false); // first seen: a claimant may have read before it completed
    now += 299_999;
    expect(grace.settled('t-0', 3)).toBe(false);
    now += 1;
    expect(grace.settled('t-0', 3)).toBe(true);
    expect(grace.settled('t-0', 4)).toBe(false); // a newer epoch completed: the wait starts again
    expect(grace.settled('t-1', 3)).toBe(false);
    expect(new EpochGcGrace(0).settled('t-0', 1)).toBe(true);
  });
});

describe('S3ClaimStore.collectSuperseded', () => {
  it('deletes the superseded epochs’ objects, claim records last, and keeps the rest', async () => {
    const objects = new MemoryObjectStore('supported');
    const completed = new Set<number>();
    const store = await S3ClaimStore.open({
      root: 's3://memory-bucket/gc',
      jobName: 'job',
      objects,
      epochGcGraceMs: 0,
      latestCompleted: (directory) => {
        const epoch = epochOfLocation(`${directory}/`) ?? 0;
        return Promise.resolve(completed.has(epoch) ? `${directory}/job.t-0/chk-${epoch * 2 ** 32 + 1}` : undefined);
      },
    });
    const put = (key: string) => objects.putIfAbsent(`gc/job/partitions/t-0/${key}`, 'x');
    for (let i = 1; i <= 3; i++) {
      const claim = await store.claim('job.t-0', 't', 0);
      await put(`epoch-${String(claim.epoch).padStart(6, '0')}/job.t-0/shared/file-${i}`);
      completed.add(claim.epoch);
    }
    // Epoch 4 claimed while 3 is the newest with a checkpoint: it restores from 3, completed nothing yet.
    await store.claim('job.t-0', 't', 0);
    expect(await store.collectSuperseded('job.t-0', 't', 0)).toEqual([1, 2]);
    const left = await objects.list('gc/job/partitions/t-0/');
    expect(left.some((k) => k.includes('epoch-000001') || k.includes('epoch-000002'))).toBe(false);
    expect(left.filter((k) => k.includes('epoch-000003'))).toHaveLength(2);
    expect(await store.collectSuperseded('job.t-0', 't', 0)).toEqual([]);
    // The next claim still restores from epoch 3's checkpoint.
    expect((await store.claim('job.t-0', 't', 0)).restoreFrom).toMatch(/epoch-000003/);
  });
});
