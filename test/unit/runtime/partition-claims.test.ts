import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AssignerProtocol } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { partitionTaskAssigner } from '../../../operators/sources/kafka/partition-task-assignment.ts';
import { claimPartition } from '../../../runtime/group/partition-claims.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('partition claims', () => {
  it('gives every claim the next epoch, its own folder, and the previous claim as base', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cdcflow-claims-'));
    dirs.push(root);
    const first = await claimPartition(root, 'job', 'job.t-3', 't', 3);
    const second = await claimPartition(root, 'job', 'job.t-3', 't', 3);
    expect([first.epoch, second.epoch]).toEqual([1, 2]);
    expect(first.restoreFrom).toBeUndefined();
    // No checkpoint completed in epoch 1: epoch 2 starts from epoch 1's base (nothing), never from a late checkpoint of epoch 1.
    expect(second.restoreFrom).toBeUndefined();
    expect(second.directory).not.toBe(first.directory);
    expect(JSON.parse(readFileSync(join(second.directory, 'claim.json'), 'utf8'))).toMatchObject({
      epoch: 2,
      base: null,
    });
  });

  it('concurrent claims never share an epoch', async () => {
    const root = mkdtempSync(join(tmpdir(), 'cdcflow-claims-'));
    dirs.push(root);
    const claims = await Promise.all(Array.from({ length: 5 }, () => claimPartition(root, 'job', 'job.t-0', 't', 0)));
    expect(new Set(claims.map((c) => c.epoch)).size).toBe(5);
  });
});

describe('partition task assigner', () => {
  it('gives the partition to the member with the highest owner epoch only', async () => {
    const meta = (epoch: number) =>
      partitionTaskAssigner({ partition: 2, epoch })({
        cluster: {} as never,
        groupId: 'g',
        logger: {} as never,
      }).protocol({ topics: ['t'] }).metadata;
    const assigner = partitionTaskAssigner({ partition: 2, epoch: 5 })({
      cluster: {} as never,
      groupId: 'g',
      logger: {} as never,
    });
    const result = await assigner.assign({
      members: [
        { memberId: 'old', memberMetadata: meta(4) },
        { memberId: 'new', memberMetadata: meta(5) },
      ] as never,
      topics: ['t'],
    });
    const byMember = Object.fromEntries(
      result.map((r) => [r.memberId, AssignerProtocol.MemberAssignment.decode(r.memberAssignment)?.assignment]),
    );
    expect(byMember).toEqual({ old: {}, new: { t: [2] } });
  });
});
