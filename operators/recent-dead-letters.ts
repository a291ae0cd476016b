/**
 * The last few dead letters of this thread (where they came from, the reason, never the payload),
 * so the web UI can show on-call engineers a sample next to the counts without reading the topic.
 * Bounded: a flood of letters costs a fixed few kilobytes. Per thread: a parallel job's subtask
 * workers keep their own (the UI shows the main thread's).
 */
import type { DeadLetter } from './sources/kafka/dead-letter.ts';

export interface DeadLetterSample {
  readonly stage: string;
  readonly kind: string;
  readonly reason: string;
  readonly errorClass: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly atMs: number;
}

const CAPACITY = 20;
const MAX_REASON_CHARS = 300;
const ring: DeadLetterSample[] = [];

export function rememberDeadLetter(letter: DeadLetter): void {
  const reason =
    letter.reason.length > MAX_REASON_CHARS ? `${letter.reason.slice(0, MAX_REASON_CHARS)}…` : letter.reason;
  ring.push({
    stage: letter.stage ?? 'decode',
    kind: letter.errorKind,
    reason,
    errorClass: letter.errorClass ?? 'DecodeError',
    topic: letter.topic,
    partition: letter.partition,
    offset: letter.offset,
    atMs: letter.deadLetteredAtMs ?? Date.now(),
  });
  if (ring.length > CAPACITY) ring.shift();
}

/** Oldest first. */
export function recentDeadLetters(): readonly DeadLetterSample[] {
  return [...ring];
}
