/**
 * Partition claims in an S3-compatible object store, for `s3://` checkpoint roots: the POSIX
 * claims (partition-claims.ts) with a conditional create in place of mkdir.
 *
 * Layout: `<prefix>/<job>/partitions/<topic>-<p>/epoch-<e>/claim.json` {epoch, owner, claimedAtMs,
 * base}, and that epoch's checkpoints under `epoch-<e>/<task job>/chk-<id>/…`. Claiming epoch e + 1
 * is creating its `claim.json` with `If-None-Match: *`: of any number of claimants exactly one
 * create succeeds, the others get 412, look again and claim the epoch after. The restore point is
 * chosen before the create, from the newest claimed epoch (its latest completed checkpoint, else
 * its base), so a claim never exists without it — unlike mkdir then claim.json on a filesystem.
 *
 * Why create-only and not one claim object advanced with `If-Match: <etag>`: S3Proxy 4.1.0 honours
 * both headers one request at a time, but settles If-Match with a HEAD before the write, so racing
 * writers naming the same ETag both win (measured: 167 of 200 rounds of 8 writers had more than
 * one winner), while its If-None-Match is an atomic create (0 of 200). A create per epoch needs
 * only the condition every store that has one makes atomic (AWS S3, MinIO, versitygw, S3Proxy ≥ 3).
 *
 * Safety rests on the store honouring `If-None-Match: *`; S3Proxy 2.6 ignores it (measured), so
 * `S3ClaimStore.open` probes the store once and refuses one that does not (`ClaimStoreCannotFenceError`).
 */
import { CdcflowError } from '../../state/errors.ts';
import type { ObjectStore } from '../../checkpoints/object-store.ts';
import { parseS3Url } from '../../checkpoints/s3-location.ts';
import type { SuccessorClaim } from '../../operators/sinks/owner-epoch.ts';
import {
  EpochGcGrace,
  epochGcGraceMs,
  epochOfLocation,
  newestCompletedEpoch,
  supersededEpochs,
  type EpochFacts,
} from './epoch-gc.ts';
import { checkpointIdOf, ownerName, type PartitionClaim, type PartitionClaimStore } from './partition-claims.ts';

/** The store under an `s3://` checkpoint root cannot hold exclusive claims: group mode must not run on it. */
export class ClaimStoreCannotFenceError extends CdcflowError {
  constructor(message: string) {
    super(message, { domain: 'user', retriable: false });
  }
}

/** What the claim store needs of an object store. */
export type ClaimObjects = Pick<
  ObjectStore,
  'url' | 'getText' | 'listFolders' | 'putIfAbsent' | 'conditionalWrites' | 'list' | 'delete'
>;

interface ClaimRecord {
  readonly epoch: number;
  readonly owner: string;
  readonly claimedAtMs: number;
  /** The checkpoint this epoch restored from; null for a fresh start. */
  readonly base: string | null;
}

export interface S3ClaimStoreOptions {
  /** The checkpoint root, `s3://bucket/prefix`. */
  readonly root: string;
  /** The group job's name: claims live under `<prefix>/<jobName>/partitions/`. */
  readonly jobName: string;
  readonly objects: ClaimObjects;
  /** The location of the latest completed checkpoint of `taskJobName` under `directory` (an epoch's root), if any. */
  readonly latestCompleted: (directory: string, taskJobName: string) => Promise<string | undefined>;
  /** @default `<host> pid <pid>` */
  readonly owner?: string;
  /** How long the newest completed epoch must have been seen before older ones go (epoch-gc.ts). @default CDCFLOW_EPOCH_GC_GRACE_MS, else 300000 */
  readonly epochGcGraceMs?: number;
}

const EPOCH = /\/epoch-(\d+)\/$/;
const MAX_CLAIM_ATTEMPTS = 50;

export class S3ClaimStore implements PartitionClaimStore {
  private readonly bucketUrl: string;
  private readonly jobPrefix: string;
  private readonly owner: string;

  private readonly grace: EpochGcGrace;

  private constructor(private readonly o: S3ClaimStoreOptions) {
    this.grace = new EpochGcGrace(o.epochGcGraceMs ?? epochGcGraceMs());
    const { bucket, prefix } = parseS3Url(o.root);
    this.bucketUrl = `s3://${bucket}`;
    this.jobPrefix = `${prefix === '' ? '' : `${prefix}/`}${o.jobName}/`;
    this.owner = o.owner ?? ownerName();
  }

  /**
   * A claim store on `root`, after probing once that the store honours `If-None-Match: *` (the
   * same probe key written twice, the second must be refused); `ClaimStoreCannotFenceError` if not.
   */
  static async open(options: S3ClaimStoreOptions): Promise<S3ClaimStore> {
    // Probed under the job's own prefix: credentials may be limited to it.
    const { prefix } = parseS3Url(options.root);
    if (
      (await options.objects.conditionalWrites(`${prefix === '' ? '' : `${prefix}/`}${options.jobName}/`)) !==
      'supported'
    ) {
      throw new ClaimStoreCannotFenceError(
        `group mode cannot claim partitions under ${options.root}: the object store ignores If-None-Match: * on PUT ` +
          '(a second create of the same key succeeded), so two processes could both believe they own a partition. ' +
          'S3Proxy 2.6.0 (the stack on port 19000) is such a store. Use AWS S3, MinIO, versitygw or S3Proxy 4.1.0 ' +
          '(in the stack: `npm run stack -- up s3proxy-cas`, CDCFLOW_S3_ENDPOINT=http://127.0.0.1:19100), ' +
          'or a checkpoint root on a filesystem every process shares.',
      );
    }
    return new S3ClaimStore(options);
  }

  private partitionPrefix(topic: string, partition: number): string {
    return `${this.jobPrefix}partitions/${topic}-${partition}/`;
  }

  private epochKey(topic: string, partition: number, epoch: number): string {
    return `${this.partitionPrefix(topic, partition)}epoch-${String(epoch).padStart(6, '0')}`;
  }

  /** Epochs with any object under them, newest first. */
  private async epochs(topic: string, partition: number): Promise<number[]> {
    const folders = await this.o.objects.listFolders(this.partitionPrefix(topic, partition));
    return folders
      .flatMap((f) => {
        const m = EPOCH.exec(f);
        return m === null ? [] : [Number(m[1])];
      })
      .sort((a, b) => b - a);
  }

  private async readClaim(topic: string, partition: number, epoch: number): Promise<ClaimRecord | undefined> {
    const text = await this.o.objects.getText(`${this.epochKey(topic, partition, epoch)}/claim.json`);
    return text === undefined ? undefined : (JSON.parse(text) as ClaimRecord);
  }

  /** The newest epoch that has a claim, with its record. */
  private async newestRecord(topic: string, partition: number): Promise<ClaimRecord | undefined> {
    for (const epoch of await this.epochs(topic, partition)) {
      const claim = await this.readClaim(topic, partition, epoch);
      if (claim !== undefined) return claim;
    }
    return undefined;
  }

  async newest(topic: string, partition: number): Promise<{ epoch: number; claimedAtMs: number } | undefined> {
    const claim = await this.newestRecord(topic, partition);
    return claim === undefined ? undefined : { epoch: claim.epoch, claimedAtMs: claim.claimedAtMs };
  }

  async collectSuperseded(taskJobName: string, topic: string, partition: number): Promise<number[]> {
    const facts: EpochFacts[] = [];
    for (const epoch of await this.epochs(topic, partition)) {
      const claim = await this.readClaim(topic, partition, epoch);
      const latest = await this.o.latestCompleted(this.epochUrl(topic, partition, epoch), taskJobName);
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
    for (const epoch of superseded) {
      // The claim record last: a half-deleted epoch still reads as claimed, and the next run finishes it.
      const prefix = `${this.epochKey(topic, partition, epoch)}/`;
      const keys = await this.o.objects.list(prefix);
      const claimKey = `${prefix}claim.json`;
      await this.o.objects.delete(keys.filter((k) => k !== claimKey));
      await this.o.objects.delete([claimKey]);
    }
    return superseded;
  }

  async successor(topic: string, partition: number, epoch: number): Promise<SuccessorClaim | undefined> {
    const next = (await this.epochs(topic, partition)).filter((e) => e > epoch).at(-1);
    if (next === undefined) return undefined;
    // The claim record is the epoch's first object, created with its restore point in one PUT.
    const claim = await this.readClaim(topic, partition, next);
    return { epoch: next, restore: claim === undefined ? undefined : { checkpointId: checkpointIdOf(claim.base) } };
  }

  async claim(taskJobName: string, topic: string, partition: number): Promise<PartitionClaim> {
    for (let attempt = 1; attempt <= MAX_CLAIM_ATTEMPTS; attempt++) {
      const current = await this.newestRecord(topic, partition);
      // Restore point: the newest claimed epoch's latest completed checkpoint, else its own base.
      // Whatever that owner completes after this read is void: our sinks roll its transactions back.
      const base =
        current === undefined
          ? undefined
          : ((await this.o.latestCompleted(this.epochUrl(topic, partition, current.epoch), taskJobName)) ??
            current.base ??
            undefined);
      const epoch = (current?.epoch ?? 0) + 1;
      const record: ClaimRecord = { epoch, owner: this.owner, claimedAtMs: Date.now(), base: base ?? null };
      const key = `${this.epochKey(topic, partition, epoch)}/claim.json`;
      // Another process claimed this epoch first: look again and claim the one after.
      if (!(await this.o.objects.putIfAbsent(key, JSON.stringify(record)))) continue;
      return {
        topic,
        partition,
        epoch,
        owner: this.owner,
        directory: this.epochUrl(topic, partition, epoch),
        restoreFrom: base,
      };
    }
    throw new CdcflowError(
      `could not claim ${topic}-${partition} under ${this.o.root} in ${MAX_CLAIM_ATTEMPTS} attempts: other processes kept claiming it first`,
      { domain: 'external', retriable: true },
    );
  }

  private epochUrl(topic: string, partition: number, epoch: number): string {
    return `${this.bucketUrl}/${this.epochKey(topic, partition, epoch)}`;
  }
}
