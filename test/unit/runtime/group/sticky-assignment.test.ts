/**
 * The group's sticky assignment (cooperative-sticky's result): balanced, moving no more partitions
 * than balance requires on a join, a leave or new partitions, deterministic, and a member that
 * missed rebalances (older generation) losing a partition it still claims to the current owner.
 */
import { AssignerProtocol } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  stickyAssignment,
  partitionsMoved,
  type StickyMember,
  type TopicPartition,
} from '../../../../runtime/group/sticky-assignment.ts';
import {
  decodeMember,
  encodeOwned,
  stickyAssigner,
  STICKY_ASSIGNER_NAME,
} from '../../../../runtime/group/sticky-assigner.ts';

const topics = (spec: Record<string, number>) =>
  new Map(Object.entries(spec).map(([t, n]) => [t, Array.from({ length: n }, (_, i) => i)]));
const member = (id: string, owned: TopicPartition[] = [], generation = 1, subscribed = ['t']): StickyMember => ({
  memberId: `${id}-m`,
  groupInstanceId: id,
  topics: subscribed,
  owned,
  generation,
});
/** The members again, each owning what `assignment` gave it (the next rebalance's input). */
const after = (members: StickyMember[], assignment: Map<string, TopicPartition[]>, generation = 2) =>
  members.map((m) => ({ ...m, owned: assignment.get(m.memberId) ?? [], generation }));
const counts = (a: Map<string, TopicPartition[]>) => [...a.values()].map((l) => l.length).sort((x, y) => x - y);
const everyOnce = (a: Map<string, TopicPartition[]>, total: number) => {
  const keys = [...a.values()].flat().map((p) => `${p.topic}-${p.partition}`);
  expect(new Set(keys).size).toBe(keys.length);
  expect(keys.length).toBe(total);
};

/** Small deterministic PRNG (mulberry32) for the randomised cases. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('sticky assignment', () => {
  it('balances a fresh group', () => {
    const a = stickyAssignment([member('a'), member('b'), member('c')], topics({ t: 8 }));
    expect(counts(a)).toEqual([2, 3, 3]);
    everyOnce(a, 8);
  });

  it('a join moves only what the new member must get; the others keep everything else', () => {
    const first = stickyAssignment([member('a'), member('b'), member('c')], topics({ t: 6 }));
    const joined = [...after([member('a'), member('b'), member('c')], first), member('d', [], -1)];
    const second = stickyAssignment(joined, topics({ t: 6 }));
    expect(counts(second)).toEqual([1, 1, 2, 2]);
    // 6 over 4: quotas 2, 2, 1, 1; the ⌈⌉ quotas go to members that already own 2, so one partition moves.
    expect(partitionsMoved(first, second)).toBe(1);
    expect(second.get('d-m')).toHaveLength(1);
    for (const id of ['a', 'b', 'c'])
      for (const p of second.get(`${id}-m`) ?? []) expect(first.get(`${id}-m`)).toContainEqual(p);
  });

  it('a leave moves only the leaver’s partitions', () => {
    const members = [member('a'), member('b'), member('c')];
    const first = stickyAssignment(members, topics({ t: 6 }));
    const stay = after(members, first).filter((m) => m.memberId !== 'b-m');
    const second = stickyAssignment(stay, topics({ t: 6 }));
    expect(counts(second)).toEqual([3, 3]);
    for (const m of stay) for (const p of first.get(m.memberId) ?? []) expect(second.get(m.memberId)).toContainEqual(p);
  });

  it('new partitions (topic growth) go out without moving existing ones', () => {
    const members = [member('a'), member('b')];
    const first = stickyAssignment(members, topics({ t: 4 }));
    const second = stickyAssignment(after(members, first), topics({ t: 6 }));
    expect(counts(second)).toEqual([3, 3]);
    expect(partitionsMoved(first, second)).toBe(0);
    everyOnce(second, 6);
  });

  it('is deterministic: the same members in any order give the same assignment', () => {
    const members = [
      member('a', [
        { topic: 't', partition: 0 },
        { topic: 't', partition: 3 },
      ]),
      member('b', [{ topic: 't', partition: 1 }]),
      member('c'),
      member('d', [{ topic: 'u', partition: 2 }], 1, ['t', 'u']),
    ].map((m) => ({ ...m, topics: ['t', 'u'] }));
    const expected = stickyAssignment(members, topics({ t: 5, u: 3 }));
    const random = rng(7);
    for (let i = 0; i < 20; i++) {
      const shuffled = [...members].sort(() => random() - 0.5);
      expect(stickyAssignment(shuffled, topics({ t: 5, u: 3 }))).toEqual(expected);
    }
  });

  it('a partition claimed twice stays with the newer generation (a member that missed rebalances loses it)', () => {
    const p0 = { topic: 't', partition: 0 };
    const a = stickyAssignment([member('zombie', [p0], 3), member('current', [p0], 5)], topics({ t: 2 }));
    expect(a.get('current-m')).toContainEqual(p0);
    expect(a.get('zombie-m')).toEqual([{ topic: 't', partition: 1 }]);
  });

  it('ignores owned partitions that no longer exist or the member does not subscribe to', () => {
    const a = stickyAssignment(
      [
        member('a', [
          { topic: 't', partition: 9 },
          { topic: 'gone', partition: 0 },
        ]),
        member('b'),
      ],
      topics({ t: 2 }),
    );
    expect(counts(a)).toEqual([1, 1]);
    everyOnce(a, 2);
  });

  it('members with different topics (a rolling upgrade that adds one): each partition goes to a subscriber', () => {
    const a = stickyAssignment(
      [member('old', [{ topic: 't', partition: 0 }], 1, ['t']), member('new', [], 1, ['t', 'u'])],
      topics({ t: 2, u: 2 }),
    );
    expect(a.get('old-m')?.every((p) => p.topic === 't')).toBe(true);
    expect(a.get('new-m')?.filter((p) => p.topic === 'u')).toHaveLength(2);
    everyOnce(a, 4);
  });

  it('randomised: always balanced, every partition once, and moves exactly the minimum', () => {
    const random = rng(42);
    for (let round = 0; round < 300; round++) {
      const partitions = 1 + Math.floor(random() * 24);
      const memberCount = 1 + Math.floor(random() * 7);
      // Arbitrary previous ownership (some partitions unowned), distinct per partition.
      const members = Array.from({ length: memberCount }, (_, i) => member(`m${i}`, [], 1 + Math.floor(random() * 3)));
      const owned = new Map<string, TopicPartition[]>(members.map((m) => [m.memberId, []]));
      for (let p = 0; p < partitions; p++)
        if (random() < 0.8)
          owned.get(members[Math.floor(random() * memberCount)]!.memberId)!.push({ topic: 't', partition: p });
      const input = members.map((m) => ({ ...m, owned: owned.get(m.memberId)! }));
      const result = stickyAssignment(input, topics({ t: partitions }));
      everyOnce(result, partitions);
      const c = counts(result);
      expect(c[c.length - 1]! - c[0]!).toBeLessThanOrEqual(1);
      // The optimum: quotas (⌈⌉ first) against ownership, both largest first.
      const base = Math.floor(partitions / memberCount);
      const quotas = members.map((_, i) => base + (i < partitions % memberCount ? 1 : 0));
      const have = input.map((m) => m.owned.length).sort((x, y) => y - x);
      const keptAtBest = have.reduce((sum, n, i) => sum + Math.min(n, quotas[i]!), 0);
      const ownedTotal = have.reduce((s, n) => s + n, 0);
      expect(partitionsMoved(owned, result), `round ${round}`).toBe(ownedTotal - keptAtBest);
    }
  });
});

describe('sticky assigner (kafkajs)', () => {
  it('carries what a member owns through its subscription and assigns from it', async () => {
    const cluster = { findTopicPartitionMetadata: () => [0, 1, 2, 3].map((partitionId) => ({ partitionId })) };
    const make = (owned: TopicPartition[], generation: number) =>
      stickyAssigner({ owned: () => owned, generation: () => generation })({
        cluster: cluster as never,
        groupId: 'g',
        logger: {} as never,
      });
    const a = make(
      [
        { topic: 't', partition: 0 },
        { topic: 't', partition: 1 },
        { topic: 't', partition: 2 },
      ],
      4,
    );
    const b = make([], -1);
    const metadataA = a.protocol({ topics: ['t'] });
    expect(metadataA.name).toBe(STICKY_ASSIGNER_NAME);
    expect(decodeMember('a', 'ia', metadataA.metadata).owned).toHaveLength(3);
    const assigned = await a.assign({
      members: [
        { memberId: 'a', memberMetadata: metadataA.metadata },
        { memberId: 'b', memberMetadata: b.protocol({ topics: ['t'] }).metadata },
      ],
      topics: ['t'],
    });
    const of = (id: string) =>
      AssignerProtocol.MemberAssignment.decode(assigned.find((x) => x.memberId === id)!.memberAssignment)?.assignment;
    expect(of('a')).toEqual({ t: [0, 1] });
    expect(of('b')).toEqual({ t: [2, 3] });
  });

  it('treats user data it does not understand as owning nothing', () => {
    const metadata = AssignerProtocol.MemberMetadata.encode({
      version: 0,
      topics: ['t'],
      userData: Buffer.from('junk'),
    });
    expect(decodeMember('x', null, metadata)).toMatchObject({ owned: [], generation: -1, topics: ['t'] });
    expect(
      decodeMember(
        'x',
        null,
        AssignerProtocol.MemberMetadata.encode({
          version: 1,
          topics: ['t'],
          userData: encodeOwned([{ topic: 't', partition: 1 }], 3),
        }),
      ).generation,
    ).toBe(3);
  });
});
