import type { SinkIdentity } from '../two-phase-commit.ts';

/**
 * The transactional id of one slot of one sink subtask: `<job>-<sinkUid>-<subtask>-<slot>`.
 * Deterministic, so a restarted job (or a zombie of it) lands on the same ids and InitProducerId
 * fences the older holder; slots let the next transaction run beside a prepared one without
 * fencing it. `prefix` replaces `<job>` when two jobs of the same name share a cluster.
 *
 * In group mode the partition task's owner epoch joins the job part (`<job>.e<epoch>-…`): each
 * transaction begins with an InitProducerId, so with shared ids a paused older owner that wakes
 * up would fence (abort) the newer owner's open transaction, whose commit then looks superseded —
 * lost records. With an id per epoch an older owner can only touch its own transactions; the newer
 * owner aborts those at restore (`recover`) and the older one checks the claims before it begins
 * or commits (owner-epoch.ts).
 */
export function transactionalId(identity: SinkIdentity, slot: number, prefix?: string, ownerEpoch?: number): string {
  const job = prefix ?? identity.jobName;
  return `${ownerEpoch === undefined ? job : `${job}.e${ownerEpoch}`}-${identity.sinkUid}-${identity.subtaskIndex}-${slot}`;
}

/** Matches the transactional ids of every subtask, slot and owner epoch of this sink; groups: epoch, subtask, slot. */
export function transactionalIdPattern(identity: SinkIdentity, prefix?: string): RegExp {
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(
    `^${escape(prefix ?? identity.jobName)}(?:\\.e(?<epoch>\\d+))?-${escape(identity.sinkUid)}-(?<subtask>\\d+)-(?<slot>\\d+)$`,
  );
}
