import { inKeyGroupRange, type KeyGroupRange } from './key-groups.ts';
import type { RegisteredState } from './state-cache.ts';
import { keyGroupOfStateKey } from './state-key-layout.ts';
import { isExpired, writtenAtOf } from './ttl-envelope.ts';

/**
 * Which stored entries belong in a full snapshot: those in the subtask's key-group range whose
 * TTL (if their state has one) has not expired at `now`. Runs once per entry of the state, so it
 * reads the key and value in place and skips the checks that cannot fail (a range covering every
 * key group, no state with a TTL). Entries of states not registered (yet) are kept.
 */
export function liveEntryFilter(
  states: readonly RegisteredState[],
  range: KeyGroupRange,
  maxParallelism: number,
  now: number,
): (key: Buffer, value: Buffer) => boolean {
  const allGroups = range.start === 0 && range.end >= maxParallelism - 1;
  const withTtl = states.filter((s) => s.ttlMs !== undefined);
  return (key, value) => {
    if (!allGroups && !inKeyGroupRange(range, keyGroupOfStateKey(key))) return false;
    for (const state of withTtl) {
      const prefix = state.namePrefix;
      if (key.length >= prefix.length && key.compare(prefix, 0, prefix.length, 0, prefix.length) === 0) {
        return !isExpired(writtenAtOf(value), state.ttlMs, now);
      }
    }
    return true;
  };
}
