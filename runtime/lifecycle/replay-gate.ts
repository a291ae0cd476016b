/**
 * Replay safety gate: an `at-least-once` sink with side effects (HTTP calls, e-mails) is never
 * replayed silently. When a checkpoint completes, the job records in
 * `<checkpoint root>/<job>/side-effect-sinks.json` which checkpoint such a sink last committed, with
 * the source positions of that checkpoint. A start that would replay over it — restoring an older
 * checkpoint or savepoint, or starting fresh (`restore: 'none'`, which reads from the group's
 * committed offsets or the earliest) — fails with {@link ReplayRefusedError} unless `allowReplay`
 * (CLI `--allow-replay`), and logs how many records the sink will receive again.
 * Limit: the count is the source records between the two checkpoints' positions (a filter in front
 * of the sink makes it an upper bound); after a fresh start it is unknown.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckpointMetadata, StoredCheckpoint } from '../../checkpoints/index.ts';
import { CdcflowError } from '../../state/errors.ts';

export const SIDE_EFFECT_SINKS_FILE = 'side-effect-sinks.json';

interface Recorded {
  readonly sinks: Record<string, { readonly checkpointId: number; readonly positions: Record<string, string> }>;
}

export class ReplayRefusedError extends CdcflowError {
  constructor(
    readonly sink: string,
    readonly committedCheckpoint: number,
    readonly restoredCheckpoint: number | undefined,
    readonly resend: bigint | undefined,
  ) {
    const from = restoredCheckpoint === undefined ? 'starting fresh' : `restoring checkpoint ${restoredCheckpoint}`;
    super(
      `refusing to replay into sink '${sink}' (at-least-once, with side effects): it committed checkpoint ${committedCheckpoint}, and ${from} would send ${resend === undefined ? 'an unknown number of' : String(resend)} records to it again. ` +
        `Restore checkpoint ${committedCheckpoint} or later, or accept the replay: allowReplay: true / cdcflow run --allow-replay.`,
      { domain: 'user', retriable: false },
    );
  }
}

/** `topic:partition` → offset, per source operator, from a checkpoint's tasks. */
export function sourcePositionsOf(metadata: CheckpointMetadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const task of Object.values(metadata.tasks)) {
    const positions = task.operator?.source?.positions ?? [];
    for (const p of positions) out[`${task.operatorUid}/${p.split}`] = p.position;
  }
  return out;
}

/** Checkpoint `stored` completed (its sinks commit now): remember it for each gated sink. */
export async function recordSideEffectCommit(
  jobRoot: string,
  sinks: readonly string[],
  stored: StoredCheckpoint,
): Promise<void> {
  if (sinks.length === 0) return;
  const recorded = await readRecorded(jobRoot);
  const positions = sourcePositionsOf(stored.metadata);
  for (const sink of sinks) recorded.sinks[sink] = { checkpointId: stored.metadata.checkpointId, positions };
  const path = join(jobRoot, SIDE_EFFECT_SINKS_FILE);
  await writeFile(`${path}.tmp`, JSON.stringify(recorded, null, 2));
  await rename(`${path}.tmp`, path);
}

/**
 * Throws when starting from `restored` (undefined: fresh) replays over a gated sink's last commit
 * and `allowReplay` is off; otherwise logs what will be re-sent. Returns the records to re-send per sink.
 */
export async function checkReplayGate(
  jobRoot: string,
  restored: StoredCheckpoint | undefined,
  allowReplay: boolean,
  warn: (line: string) => void,
): Promise<Map<string, bigint | undefined>> {
  const recorded = await readRecorded(jobRoot);
  const restoredId = restored?.metadata.checkpointId;
  const from = restored === undefined ? undefined : sourcePositionsOf(restored.metadata);
  const replays = new Map<string, bigint | undefined>();
  for (const [sink, commit] of Object.entries(recorded.sinks)) {
    if (restoredId !== undefined && restoredId >= commit.checkpointId) continue;
    let resend: bigint | undefined;
    if (from !== undefined) {
      resend = 0n;
      for (const [split, offset] of Object.entries(commit.positions)) {
        const start = BigInt(from[split] ?? '0');
        if (BigInt(offset) > start) resend += BigInt(offset) - start;
      }
    }
    if (!allowReplay) throw new ReplayRefusedError(sink, commit.checkpointId, restoredId, resend);
    replays.set(sink, resend);
    warn(
      `replay allowed: sink '${sink}' (at-least-once, with side effects) committed checkpoint ${commit.checkpointId}; ${restoredId === undefined ? 'starting fresh' : `restoring checkpoint ${restoredId}`} re-sends ${resend === undefined ? 'an unknown number of' : String(resend)} records to it`,
    );
  }
  return replays;
}

async function readRecorded(jobRoot: string): Promise<{ sinks: Recorded['sinks'] }> {
  try {
    const parsed = JSON.parse(await readFile(join(jobRoot, SIDE_EFFECT_SINKS_FILE), 'utf8')) as Recorded;
    return { sinks: { ...parsed.sinks } };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { sinks: {} };
    throw error;
  }
}
