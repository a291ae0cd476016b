/**
 * The assignment cooperative-sticky (KIP-429, Kafka's CooperativeStickyAssignor) computes, as a
 * pure function: balanced (every member owns ⌊N/M⌋ or ⌈N/M⌉ partitions) and moving as few
 * partitions as balance allows. Each member reports what it owns now; it keeps as many of those
 * as its quota allows, the larger quotas going to the members that own the most, and only the
 * rest (a dead member's, a new partition, a surplus) is handed out. So a join moves just enough
 * partitions to the new member, and a leave moves just the leaver's.
 *
 * Two members can report the same partition (one missed a rebalance: paused past its session,
 * cut off): the one with the newer generation keeps it, as in Kafka's assignor. Deterministic:
 * the result depends on the members' ids, subscriptions, ownership and generations, not on the
 * order they are given in.
 */

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

export interface StickyMember {
  /** The consumer's member id (what the assignment is keyed by). */
  readonly memberId: string;
  /** Stable across restarts when static (KIP-345); orders members when set. */
  readonly groupInstanceId?: string | undefined;
  readonly topics: readonly string[];
  /** What the member owns now (from its subscription's user data). */
  readonly owned: readonly TopicPartition[];
  /** The generation in which it got `owned`; -1 when unknown. */
  readonly generation: number;
}

const tpKey = (p: TopicPartition) => `${p.topic}\u0000${p.partition}`;
const byTopicPartition = (a: TopicPartition, b: TopicPartition) =>
  a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition;
const idOf = (m: StickyMember) => m.groupInstanceId ?? m.memberId;
const byId = (a: StickyMember, b: StickyMember) => {
  const x = idOf(a);
  const y = idOf(b);
  return x < y ? -1 : x > y ? 1 : a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0;
};

/**
 * @param partitionsByTopic every partition of every subscribed topic, as the leader's metadata has them.
 * @returns each member's partitions (every member present, sorted), keyed by member id.
 */
export function stickyAssignment(
  members: readonly StickyMember[],
  partitionsByTopic: ReadonlyMap<string, readonly number[]>,
): Map<string, TopicPartition[]> {
  const sorted = [...members].sort(byId);
  const result = new Map<string, TopicPartition[]>(sorted.map((m) => [m.memberId, []]));
  if (sorted.length === 0) return result;
  const subscribed = new Map(sorted.map((m) => [m.memberId, new Set(m.topics)]));
  const all: TopicPartition[] = [];
  for (const [topic, partitions] of partitionsByTopic)
    if (sorted.some((m) => subscribed.get(m.memberId)?.has(topic)))
      for (const partition of partitions) all.push({ topic, partition });
  all.sort(byTopicPartition);
  const exists = new Set(all.map(tpKey));

  // Who keeps a claimed partition: the newest generation wins a conflict, then the id order.
  const claimed = new Map<string, TopicPartition[]>(sorted.map((m) => [m.memberId, []]));
  const taken = new Set<string>();
  const byGeneration = [...sorted].sort((a, b) => b.generation - a.generation || byId(a, b));
  for (const m of byGeneration)
    for (const p of [...m.owned].sort(byTopicPartition)) {
      const k = tpKey(p);
      if (!exists.has(k) || taken.has(k) || !subscribed.get(m.memberId)?.has(p.topic)) continue;
      taken.add(k);
      claimed.get(m.memberId)?.push({ topic: p.topic, partition: p.partition });
    }

  const sameSubscriptions = sorted.every(
    (m) =>
      m.topics.length === sorted[0]!.topics.length &&
      m.topics.every((t) => subscribed.get(sorted[0]!.memberId)?.has(t)),
  );
  if (!sameSubscriptions) return unevenAssignment(sorted, all, claimed, subscribed);

  // Quotas: ⌈N/M⌉ for the `extra` members that own the most (they give up least), ⌊N/M⌋ for the rest.
  const base = Math.floor(all.length / sorted.length);
  const extra = all.length % sorted.length;
  const byOwned = [...sorted].sort(
    (a, b) => (claimed.get(b.memberId)?.length ?? 0) - (claimed.get(a.memberId)?.length ?? 0) || byId(a, b),
  );
  const quota = new Map(byOwned.map((m, i) => [m.memberId, base + (i < extra ? 1 : 0)]));
  const kept = new Set<string>();
  for (const m of sorted) {
    const keep = (claimed.get(m.memberId) ?? []).slice(0, quota.get(m.memberId));
    result.set(m.memberId, keep);
    for (const p of keep) kept.add(tpKey(p));
  }
  // The rest goes to whoever has the most room left (ties by id): every quota ends up filled.
  for (const p of all) {
    if (kept.has(tpKey(p))) continue;
    let target: StickyMember | undefined;
    let room = 0;
    for (const m of sorted) {
      const left = (quota.get(m.memberId) ?? 0) - (result.get(m.memberId)?.length ?? 0);
      if (left > room) [target, room] = [m, left];
    }
    if (target !== undefined) result.get(target.memberId)?.push(p);
  }
  for (const list of result.values()) list.sort(byTopicPartition);
  return result;
}

/**
 * Members with different subscriptions (only while a rolling upgrade changes the job's topics):
 * every member keeps what it owns of its topics, and each other partition goes to the subscribed
 * member with the fewest partitions. Not rebalanced until the subscriptions agree again.
 */
function unevenAssignment(
  sorted: readonly StickyMember[],
  all: readonly TopicPartition[],
  claimed: ReadonlyMap<string, TopicPartition[]>,
  subscribed: ReadonlyMap<string, ReadonlySet<string>>,
): Map<string, TopicPartition[]> {
  const result = new Map(sorted.map((m) => [m.memberId, [...(claimed.get(m.memberId) ?? [])]]));
  const kept = new Set([...result.values()].flat().map(tpKey));
  for (const p of all) {
    if (kept.has(tpKey(p))) continue;
    let target: StickyMember | undefined;
    for (const m of sorted)
      if (
        subscribed.get(m.memberId)?.has(p.topic) &&
        (target === undefined || (result.get(m.memberId)?.length ?? 0) < (result.get(target.memberId)?.length ?? 0))
      )
        target = m;
    if (target !== undefined) result.get(target.memberId)?.push(p);
  }
  for (const list of result.values()) list.sort(byTopicPartition);
  return result;
}

/** How many partitions changed owner between two assignments (a partition owned before by nobody does not count). */
export function partitionsMoved(
  before: ReadonlyMap<string, readonly TopicPartition[]>,
  after: ReadonlyMap<string, readonly TopicPartition[]>,
): number {
  const owner = new Map<string, string>();
  for (const [member, list] of before) for (const p of list) owner.set(tpKey(p), member);
  let moved = 0;
  for (const [member, list] of after)
    for (const p of list) {
      const previous = owner.get(tpKey(p));
      if (previous !== undefined && previous !== member) moved += 1;
    }
  return moved;
}
