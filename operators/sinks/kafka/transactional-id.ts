import type { SinkIdentity } from '../two-phase-commit.ts';

/**
 * The transactional id of one slot of one sink subtask: `<job>-<sinkUid>-<subtask>-<slot>`.
 * Deterministic, so a restarted job (or a zombie of it) lands on the same ids and InitProducerId
 * fences the older holder; slots let the next transaction run beside a prepared one without
 * fencing it. `prefix` replaces `<job>` when two jobs of the same name share a cluster.
 */
export function transactionalId(identity: SinkIdentity, slot: number, prefix?: string): string {
  return `${prefix ?? identity.jobName}-${identity.sinkUid}-${identity.subtaskIndex}-${slot}`;
}

/** Matches the transactional ids of every subtask and slot of this sink; groups: subtask, slot. */
export function transactionalIdPattern(identity: SinkIdentity, prefix?: string): RegExp {
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${escape(prefix ?? identity.jobName)}-${escape(identity.sinkUid)}-(\\d+)-(\\d+)$`);
}
