/**
 * Partition claims in an S3-compatible object store, for `s3://` checkpoint roots: the same
 * semantics as the POSIX claims (partition-claims.ts) with conditional writes in place of mkdir.
 *
 * One object per partition holds its current claim:
 *   `<prefix>/<job>/partitions/<topic>-<p>/claim.json`  {epoch, owner, claimedAtMs, base}
 * The first claim creates it with `If-None-Match: *`; every later claim reads it (text + ETag),
 * chooses its restore point from that epoch's lineage, and replaces it with epoch + 1 under
 * `If-Match: <that ETag>`. Of two claimants that read the same version exactly one write
 * succeeds; the other gets 412, reads again and claims the epoch after. So epochs are monotonic
 * and never shared, and — unlike mkdir then claim.json — there is no moment where an epoch exists
 * without its claim. Each epoch's checkpoints live under
 *   `<prefix>/<job>/partitions/<topic>-<p>/epoch-<e>/<task job>/chk-<id>/…`
 *
 * Only a store that honours both conditions can fence; S3Proxy 2.6 ignores them (measured), so
 * `S3ClaimStore.open` probes the store first and refuses one that does not (`ClaimStoreCannotFenceError`).
 */
import { randomBytes } from 'node:crypto';
import { CdcflowError } from '../../state/errors.ts';
import type { VersionedObjects } from '../../checkpoints/object-store.ts';
import { parseS3Url } from '../../checkpoints/s3-location.ts';
import { ownerName, type PartitionClaim, type PartitionClaimStore } from './partition-claims.ts';

/** The store under an `s3://` checkpoint root cannot hold exclusive claims: group mode must not run on it. */
export class ClaimStoreCannotFenceError extends CdcflowError {
  constructor(message: string) {
    super(message, { domain: 'user', retriable: false });
  }
}

/** What the probe found: each must be true for claims to be exclusive. */
export interface ConditionalWriteSupport {
  /** A second `If-None-Match: *` PUT of the same key was refused (412/409). */
  readonly ifNoneMatch: boolean;
  /** A PUT with `If-Match: <an ETag the object does not have>` was refused. */
  readonly ifMatch: boolean;
}

/**
 * Writes one probe key twice with `If-None-Match: *` (the second must be refused), then once with
 * a stale `If-Match` (must be refused too), and deletes it. `prefix` ends in `/` or is ''.
 */
export async function probeConditionalWrites(objects: VersionedObjects, prefix: string): Promise<ConditionalWriteSupport> {
  const key = `${prefix}.cdcflow-claim-probe/${randomBytes(8).toString('hex')}`;
  try {
    const created = await objects.writeIf(key, 'first', { ifNoneMatch: '*' });
    if (created === undefined) throw new Error(`${objects.url}/${key}: a fresh probe key was refused as if it existed`);
    const again = await objects.writeIf(key, 'second', { ifNoneMatch: '*' });
    const current = (await objects.readVersioned(key))?.etag ?? created;
    // An ETag that differs from the current one in a way no store produces.
    const stale = current === '"00000000000000000000000000000000"' ? '"ffffffffffffffffffffffffffffffff"' : '"00000000000000000000000000000000"';
    const overwritten = await objects.writeIf(key, 'third', { ifMatch: stale });
    return { ifNoneMatch: again === undefined, ifMatch: overwritten === undefined };
  } finally {
    await objects.delete([key]).catch(() => undefined);
  }
}

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
  readonly objects: VersionedObjects;
  /** The location of the latest completed checkpoint of `taskJobName` under `directory` (an epoch's root), if any. */
  readonly latestCompleted: (directory: string, taskJobName: string) => Promise<string | undefined>;
  /** @default `<host> pid <pid>` */
  readonly owner?: string;
}

const MAX_CLAIM_ATTEMPTS = 50;

export class S3ClaimStore implements PartitionClaimStore {
  private readonly bucketUrl: string;
  private readonly jobPrefix: string;
  private readonly owner: string;

  private constructor(private readonly o: S3ClaimStoreOptions) {
    const { bucket, prefix } = parseS3Url(o.root);
    this.bucketUrl = `s3://${bucket}`;
    this.jobPrefix = `${prefix === '' ? '' : `${prefix}/`}${o.jobName}/`;
    this.owner = o.owner ?? ownerName();
  }

  /**
   * A claim store on `root`, after probing once that the store fences (both conditions honoured);
   * throws `ClaimStoreCannotFenceError` naming what it ignored otherwise.
   */
  static async open(options: S3ClaimStoreOptions): Promise<S3ClaimStore> {
    const store = new S3ClaimStore(options);
    const support = await probeConditionalWrites(options.objects, store.jobPrefix);
    if (!support.ifNoneMatch || !support.ifMatch) {
      const ignored = [
        ...(support.ifNoneMatch ? [] : ['If-None-Match: * (a second create of the same key succeeded)']),
        ...(support.ifMatch ? [] : ['If-Match (a write naming a stale ETag succeeded)']),
      ].join(' and ');
      throw new ClaimStoreCannotFenceError(
        `group mode cannot claim partitions under ${options.root}: the object store ignores ${ignored} on PUT, ` +
          'so two processes could both believe they own a partition. S3Proxy (2.6.0, the stack on port 19000) is such a store. ' +
          'Use AWS S3, MinIO or versitygw (in the stack: `npm run stack -- up versitygw`, CDCFLOW_S3_ENDPOINT=http://127.0.0.1:19100), ' +
          'or a checkpoint root on a filesystem every process shares.',
      );
    }
    return store;
  }

  private claimKey(topic: string, partition: number): string {
    return `${this.jobPrefix}partitions/${topic}-${partition}/claim.json`;
  }

  private epochUrl(topic: string, partition: number, epoch: number): string {
    return `${this.bucketUrl}/${this.jobPrefix}partitions/${topic}-${partition}/epoch-${String(epoch).padStart(6, '0')}`;
  }

  private async read(topic: string, partition: number): Promise<{ record: ClaimRecord; etag: string } | undefined> {
    const found = await this.o.objects.readVersioned(this.claimKey(topic, partition));
    return found === undefined ? undefined : { record: JSON.parse(found.text) as ClaimRecord, etag: found.etag };
  }

  async newest(topic: string, partition: number): Promise<{ epoch: number; claimedAtMs: number } | undefined> {
    const current = await this.read(topic, partition);
    return current === undefined ? undefined : { epoch: current.record.epoch, claimedAtMs: current.record.claimedAtMs };
  }

  async claim(taskJobName: string, topic: string, partition: number): Promise<PartitionClaim> {
    const key = this.claimKey(topic, partition);
    for (let attempt = 1; attempt <= MAX_CLAIM_ATTEMPTS; attempt++) {
      const current = await this.read(topic, partition);
      // Restore point: the current epoch's latest completed checkpoint, else its own base. Whatever
      // that owner completes after this read is void: its sink transactions are rolled back by ours.
      const base =
        current === undefined
          ? undefined
          : ((await this.o.latestCompleted(this.epochUrl(topic, partition, current.record.epoch), taskJobName)) ??
            current.record.base ??
            undefined);
      const epoch = (current?.record.epoch ?? 0) + 1;
      const record: ClaimRecord = { epoch, owner: this.owner, claimedAtMs: Date.now(), base: base ?? null };
      const written = await this.o.objects.writeIf(
        key,
        JSON.stringify(record),
        current === undefined ? { ifNoneMatch: '*' } : { ifMatch: current.etag },
      );
      if (written === undefined) continue; // another process claimed first: claim the epoch after its
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
}
