import { snapshotPosition, streamPosition, type ChangePosition } from '../../state/index.ts';

/**
 * The commit-order position of a Debezium envelope, as cdcflow's decoder derives it
 * (state/change-position.ts): from `source.sequence`, snapshot rows in the lower tier.
 */
export function envelopePosition(event: {
  readonly op: string;
  readonly source: { readonly sequence?: string | null; readonly lsn: number };
}): ChangePosition {
  const [commit, change] =
    event.source.sequence === null || event.source.sequence === undefined
      ? [null, null]
      : (JSON.parse(event.source.sequence) as [string | null, string | null]);
  const lsn = change ?? event.source.lsn;
  return event.op === 'r' ? snapshotPosition(commit, lsn) : streamPosition(commit, lsn);
}
