import { StateError } from './errors.ts';
import { murmur3 } from './murmur3.ts';

/**
 * Key groups are the unit of state redistribution: a key always hashes to the same group, and a
 * subtask owns a contiguous range of groups, so changing parallelism moves whole groups.
 * Max parallelism is fixed for the life of a job's state (changing it re-hashes every key).
 */
export const DEFAULT_MAX_PARALLELISM = 128;

/** Largest max parallelism: key groups are stored as 16-bit numbers. */
export const MAX_MAX_PARALLELISM = 32_768;

/** An inclusive range of key groups, `start <= end`. */
export interface KeyGroupRange {
  readonly start: number;
  readonly end: number;
}

function checkParallelism(parallelism: number, maxParallelism: number): void {
  if (!Number.isInteger(maxParallelism) || maxParallelism < 1 || maxParallelism > MAX_MAX_PARALLELISM) {
    throw new StateError(`maxParallelism must be an integer in 1..${MAX_MAX_PARALLELISM}, got ${maxParallelism}`, {
      domain: 'user',
    });
  }
  if (!Number.isInteger(parallelism) || parallelism < 1 || parallelism > maxParallelism) {
    throw new StateError(
      `parallelism must be an integer in 1..maxParallelism (${maxParallelism}), got ${parallelism}`,
      {
        domain: 'user',
      },
    );
  }
}

/** The key group of an encoded key (see `encodeKey`). */
export function keyGroupFor(keyBytes: Uint8Array, maxParallelism: number = DEFAULT_MAX_PARALLELISM): number {
  return murmur3(keyBytes) % maxParallelism;
}

/** The range of key groups subtask `subtaskIndex` owns; ranges of all subtasks tile 0..max-1. */
export function keyGroupRangeFor(
  subtaskIndex: number,
  parallelism: number,
  maxParallelism: number = DEFAULT_MAX_PARALLELISM,
): KeyGroupRange {
  checkParallelism(parallelism, maxParallelism);
  if (!Number.isInteger(subtaskIndex) || subtaskIndex < 0 || subtaskIndex >= parallelism) {
    throw new StateError(`subtaskIndex must be in 0..${parallelism - 1}, got ${subtaskIndex}`, { domain: 'user' });
  }
  // Same arithmetic as Flink's KeyGroupRangeAssignment, so ranges match its mental model.
  const start = Math.floor((subtaskIndex * maxParallelism + parallelism - 1) / parallelism);
  const end = Math.floor(((subtaskIndex + 1) * maxParallelism - 1) / parallelism);
  return { start, end };
}

/** The subtask that owns `keyGroup`; the inverse of `keyGroupRangeFor`, used by the partitioner. */
export function subtaskForKeyGroup(
  keyGroup: number,
  parallelism: number,
  maxParallelism: number = DEFAULT_MAX_PARALLELISM,
): number {
  checkParallelism(parallelism, maxParallelism);
  return Math.floor((keyGroup * parallelism) / maxParallelism);
}

export function inKeyGroupRange(range: KeyGroupRange, keyGroup: number): boolean {
  return keyGroup >= range.start && keyGroup <= range.end;
}

export function rangesOverlap(a: KeyGroupRange, b: KeyGroupRange): boolean {
  return a.start <= b.end && b.start <= a.end;
}
