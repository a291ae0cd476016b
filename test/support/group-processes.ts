/**
 * What the multi-process group-mode tests read from their job processes and from the Postgres
 * sinks' fence log: which partitions a process runs (from its own lines), waiting until other
 * processes have claimed a set of partitions, and the rule that every commit carried the epoch of
 * the latest claim of its sink instance (no process committed for a partition it did not own).
 */
import pg from 'pg';
import { s3ConnectionFromEnv } from '../../checkpoints/s3-location.ts';
import { S3ObjectStore } from '../../checkpoints/s3-object-store.ts';
import type { JobProcess } from './job-process.ts';

export const CLAIMED = /partition (\S+): claimed epoch (\d+)/;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The partitions a process currently runs, from its own lines. */
export function ownedBy(p: JobProcess): string[] {
  const owned = new Set<string>();
  for (const line of p.lines) {
    const claim = CLAIMED.exec(line);
    if (claim !== null) owned.add(claim[1] as string);
    const gone = /partition (\S+): (task stopped|task finished|fenced)/.exec(line);
    if (gone !== null) owned.delete(gone[1] as string);
  }
  return [...owned];
}

/** Waits until the processes in `among` have printed claims of every one of `partitions` (lines from now on). */
export async function claimedElsewhere(
  among: readonly JobProcess[],
  partitions: readonly string[],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const marks = among.map((p) => p.lines.length);
  while (Date.now() < deadline) {
    const seen = new Set(among.flatMap((p, i) => p.lines.slice(marks[i]).flatMap((l) => CLAIMED.exec(l)?.[1] ?? [])));
    if (partitions.every((p) => seen.has(p))) return;
    await sleep(200);
  }
  throw new Error(`partitions ${partitions.join(', ')} were not claimed by another process within ${timeoutMs} ms`);
}

export interface FenceRow {
  seq: string;
  instance: string;
  kind: 'claim' | 'commit';
  epoch: string;
  owner: string;
}

/** The Postgres sinks' fence log rows of every instance whose name starts with `prefix`, in lock order. */
export async function readFenceLog(databaseUrl: string, prefix: string): Promise<FenceRow[]> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    return (
      await db.query<FenceRow>(
        'SELECT seq, instance, kind, epoch, owner FROM cdcflow_sink_fence_log WHERE left(instance, length($1)) = $1 ORDER BY seq',
        [prefix],
      )
    ).rows;
  } finally {
    await db.end();
  }
}

export interface FenceAudit {
  readonly claims: number;
  readonly commits: number;
  readonly owners: number;
  /** Every commit that did not carry the latest claim's epoch and owner, and every epoch that went back. */
  readonly violations: string[];
}

/** Checks the fence log: epochs of an instance only rise, and every commit is by the latest claimant. */
export function auditFenceLog(log: readonly FenceRow[]): FenceAudit {
  const current = new Map<string, { epoch: string; owner: string }>();
  const violations: string[] = [];
  let commits = 0;
  for (const row of log) {
    if (row.kind === 'claim') {
      const before = current.get(row.instance);
      if (before !== undefined && Number(before.epoch) > Number(row.epoch))
        violations.push(`claim ${row.seq} of ${row.instance} went back from epoch ${before.epoch} to ${row.epoch}`);
      current.set(row.instance, { epoch: row.epoch, owner: row.owner });
      continue;
    }
    commits += 1;
    const owner = current.get(row.instance);
    if (owner?.epoch !== row.epoch || owner.owner !== row.owner)
      violations.push(
        `commit ${row.seq} of ${row.instance} by ${row.owner} epoch ${row.epoch} while ${owner?.owner} held epoch ${owner?.epoch}`,
      );
  }
  const owners = new Set(log.filter((r) => r.kind === 'claim').map((r) => r.owner)).size;
  return { claims: log.length - commits, commits, owners, violations };
}

/** The env that puts a group job's checkpoint root, claims included, into the conditional-write S3 store. */
export function s3CheckpointEnv(endpoint: string, bucket: string, jobName: string): Record<string, string> {
  return { CDCFLOW_CHECKPOINT_DIR: `s3://${bucket}/${jobName}`, CDCFLOW_S3_ENDPOINT: endpoint };
}

/** Deletes every object a test job left under `s3://<bucket>/<jobName>/`. */
export async function deleteS3CheckpointRoot(endpoint: string, bucket: string, jobName: string): Promise<void> {
  const store = new S3ObjectStore(bucket, { ...s3ConnectionFromEnv(), endpoint });
  try {
    await store.delete(await store.list(`${jobName}/`)).catch(() => undefined);
  } finally {
    await store.destroy();
  }
}
