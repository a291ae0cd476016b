/**
 * Who owns a source partition's checkpoint lineage, and where its partition task restores from.
 * This file is the POSIX claim store (a shared filesystem); `s3-claim-store.ts` is the one for
 * `s3://` checkpoint roots, `claim-store-for.ts` chooses between them.
 *
 * Layout under the checkpoint root: `<root>/<job>/partitions/<topic>-<p>/epoch-<e>/` — one folder
 * per claim. A claim is an exclusive `mkdir` of the next epoch folder (atomic on a shared
 * filesystem; an object store needs a conditional put of `claim.json` instead), then `claim.json`
 * naming the owner and the checkpoint it restores from (its *base*). The task's checkpoints go
 * into its own epoch folder, so an older owner that lost the partition but still runs (a paused
 * process) writes only into its own, superseded folder.
 *
 * Restore target of a new claim: the newest epoch folder with a `claim.json`; its latest completed
 * checkpoint, else its base. A checkpoint an older owner completed after that claim was made is
 * never used: its sink transactions were rolled back by the claimant (epoch fence,
 * operators/sinks/postgres/epoch-fence.ts).
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LocalCheckpointStorage } from '../../checkpoints/index.ts';
import type { SuccessorClaim } from '../../operators/sinks/owner-epoch.ts';
import {
  EpochGcGrace,
  epochGcGraceMs,
  epochOfLocation,
  newestCompletedEpoch,
  supersededEpochs,
  type EpochFacts,
} from './epoch-gc.ts';

export interface PartitionClaim {
  readonly topic: string;
  readonly partition: number;
  readonly epoch: number;
  /** `<host> pid <pid>` */
  readonly owner: string;
  /** The task's checkpoint root (its epoch folder). */
  readonly directory: string;
  /** The checkpoint folder the task restores from; undefined for a fresh start. */
  readonly restoreFrom: string | undefined;
}

/** Where partition claims live: the group job claims and reads through this, whatever the root. */
export interface PartitionClaimStore {
  /** Claims the next owner epoch of `topic`-`partition` for this process, choosing its restore point. */
  claim(taskJobName: string, topic: string, partition: number): Promise<PartitionClaim>;
  /** The newest claim of `topic`-`partition` (epoch and when it was made), if any. */
  newest(topic: string, partition: number): Promise<{ epoch: number; claimedAtMs: number } | undefined>;
  /**
   * The first claim of `topic`-`partition` after `epoch` (its folder or object exists), with the
   * checkpoint it restores from: what an owner checks before it commits where no sink fence can.
   */
  successor(topic: string, partition: number, epoch: number): Promise<SuccessorClaim | undefined>;
  /**
   * Deletes the superseded epochs of `topic`-`partition` (epoch-gc.ts: older than the newest epoch
   * with a completed checkpoint and named by no newer claim's restore point); returns them.
   */
  collectSuperseded(taskJobName: string, topic: string, partition: number): Promise<number[]>;
}

/** Claims under a checkpoint root every process sees as a filesystem (NFS, a shared volume). */
export class PosixClaimStore implements PartitionClaimStore {
  private readonly grace: EpochGcGrace;

  constructor(
    private readonly root: string,
    private readonly jobName: string,
    graceMs: number = epochGcGraceMs(),
  ) {
    this.grace = new EpochGcGrace(graceMs);
  }

  claim(taskJobName: string, topic: string, partition: number): Promise<PartitionClaim> {
    return claimPartition(this.root, this.jobName, taskJobName, topic, partition);
  }

  newest(topic: string, partition: number): Promise<{ epoch: number; claimedAtMs: number } | undefined> {
    return newestClaim(this.root, this.jobName, topic, partition);
  }

  async collectSuperseded(taskJobName: string, topic: string, partition: number): Promise<number[]> {
    const dir = partitionDir(this.root, this.jobName, topic, partition);
    const facts: EpochFacts[] = [];
    for (const epoch of await epochsOf(dir)) {
      const folder = epochDir(dir, epoch);
      const claim = await readClaim(folder);
      const latest = await new LocalCheckpointStorage({ directory: folder, jobName: taskJobName }).latestCompleted();
      facts.push({
        epoch,
        completed: latest !== undefined,
        restoresFromEpoch: epochOfLocation(claim?.base),
        claimed: claim !== undefined,
      });
    }
    const newest = newestCompletedEpoch(facts);
    if (newest === undefined || !this.grace.settled(`${topic}-${partition}`, newest)) return [];
    const superseded = supersededEpochs(facts);
    for (const epoch of superseded) await rm(epochDir(dir, epoch), { recursive: true, force: true });
    return superseded;
  }

  async successor(topic: string, partition: number, epoch: number): Promise<SuccessorClaim | undefined> {
    // The folder, not claim.json: a claimant makes the folder before it reads its restore point.
    const dir = partitionDir(this.root, this.jobName, topic, partition);
    const next = (await epochsOf(dir)).filter((e) => e > epoch).at(-1);
    if (next === undefined) return undefined;
    const claim = await readClaim(epochDir(dir, next));
    return { epoch: next, restore: claim === undefined ? undefined : { checkpointId: checkpointIdOf(claim.base) } };
  }
}

/** The checkpoint id of a restore location (`…/chk-<id>`), undefined for none (a fresh start). */
export function checkpointIdOf(location: string | null | undefined): number | undefined {
  const m = location == null ? null : /chk-(\d+)\/?$/.exec(location);
  return m === null ? undefined : Number(m[1]);
}

interface ClaimFile {
  readonly epoch: number;
  readonly owner: string;
  readonly claimedAtMs: number;
  readonly base: string | null;
}

export function partitionDir(root: string, jobName: string, topic: string, partition: number): string {
  return join(root, jobName, 'partitions', `${topic}-${partition}`);
}

export function ownerName(): string {
  return `${hostname()} pid ${process.pid}`;
}

const EPOCH = /^epoch-(\d+)$/;

async function epochsOf(dir: string): Promise<number[]> {
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) =>
    error.code === 'ENOENT' ? [] : Promise.reject(error),
  );
  return names
    .flatMap((n) => {
      const m = EPOCH.exec(n);
      return m === null ? [] : [Number(m[1])];
    })
    .sort((a, b) => b - a);
}

function epochDir(dir: string, epoch: number): string {
  return join(dir, `epoch-${String(epoch).padStart(6, '0')}`);
}

async function readClaim(dir: string): Promise<ClaimFile | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'claim.json'), 'utf8')) as ClaimFile;
  } catch {
    return undefined;
  }
}

/** Where a new claim restores from: the newest claimed epoch's latest checkpoint, else its base. */
async function restoreTarget(dir: string, taskJobName: string): Promise<string | undefined> {
  for (const epoch of await epochsOf(dir)) {
    const folder = epochDir(dir, epoch);
    const claim = await readClaim(folder);
    if (claim === undefined) continue; // a claimant that died between mkdir and claim.json: it never ran
    const latest = await new LocalCheckpointStorage({ directory: folder, jobName: taskJobName }).latestCompleted();
    return latest?.location ?? claim.base ?? undefined;
  }
  return undefined;
}

/** The newest claim of `topic`-`partition` (epoch and when it was made), if any. */
export async function newestClaim(
  root: string,
  jobName: string,
  topic: string,
  partition: number,
): Promise<{ epoch: number; claimedAtMs: number } | undefined> {
  const dir = partitionDir(root, jobName, topic, partition);
  for (const epoch of await epochsOf(dir)) {
    const claim = await readClaim(epochDir(dir, epoch));
    if (claim !== undefined) return { epoch: claim.epoch, claimedAtMs: claim.claimedAtMs };
  }
  return undefined;
}

/** Claims the next epoch of `topic`-`partition` for this process. */
export async function claimPartition(
  root: string,
  jobName: string,
  taskJobName: string,
  topic: string,
  partition: number,
): Promise<PartitionClaim> {
  const dir = partitionDir(root, jobName, topic, partition);
  await mkdir(dir, { recursive: true });
  for (;;) {
    const epoch = ((await epochsOf(dir))[0] ?? 0) + 1;
    const folder = epochDir(dir, epoch);
    try {
      await mkdir(folder);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue; // another process claimed it first
      throw error;
    }
    const base = await restoreTarget(dir, taskJobName);
    const owner = ownerName();
    const claim: ClaimFile = { epoch, owner, claimedAtMs: Date.now(), base: base ?? null };
    const tmp = join(folder, 'claim.json.tmp');
    await writeFile(tmp, JSON.stringify(claim), { flush: true });
    await rename(tmp, join(folder, 'claim.json'));
    return { topic, partition, epoch, owner, directory: folder, restoreFrom: base };
  }
}
