/**
 * The owner-epoch fence of an Elasticsearch sink instance in group mode (runtime/group/): one
 * document per instance in `cdcflow-sink-fences` holding the epoch that may write for it.
 *
 * - A new owner raises it when its task opens (`claimEsFence`), with optimistic concurrency
 *   (`if_seq_no`/`if_primary_term`, or `op_type=create` for the first claim), never lowering it.
 * - Before each bulk request the sink reads it (a realtime GET): another epoch than ours means a
 *   newer owner claimed the partition, and the sink writes nothing (`OwnershipLostError`).
 *
 * Why at all, when every write carries an external version: a zombie replays the same source
 * positions as the new owner, so most of its writes bounce (409) or rewrite the same version. Not
 * all: two changes of one document in one source transaction share a version (external_gte,
 * external-version.ts), so a zombie re-sending the earlier one after the new owner wrote the later
 * one leaves the older row visible until the document changes again; and a zombie's refused
 * documents would be dead-lettered a second time.
 * Limit: Elasticsearch has no transaction spanning the fence and a bulk request, so the check
 * narrows the window to one bulk request and does not close it: a process paused between the
 * check and the request can still land that one request after the claim (with the effects above).
 */
import { Client, errors } from '@elastic/elasticsearch';
import { OwnershipLostError, type OwnerEpoch } from '../owner-epoch.ts';

export const ES_FENCE_INDEX = 'cdcflow-sink-fences';

/** The fence document as read: its epoch and the sequence number and primary term to write it conditionally. */
export interface FenceVersion {
  readonly epoch: number;
  readonly seqNo: number;
  readonly primaryTerm: number;
}

/** Where fences live; an interface so unit tests (and other clients) can replace Elasticsearch. */
export interface EpochFenceStore {
  read(instance: string): Promise<FenceVersion | undefined>;
  /** Writes `owner` if the document is still `expected` (undefined: does not exist); false on a conflict. */
  write(instance: string, owner: OwnerEpoch, expected: FenceVersion | undefined): Promise<boolean>;
  close(): Promise<void>;
}

/** Raises the instance's fence to our epoch; throws OwnershipLostError if a newer owner holds it. */
export async function claimEsFence(store: EpochFenceStore, instance: string, owner: OwnerEpoch): Promise<void> {
  for (let attempt = 1; attempt <= 20; attempt++) {
    const current = await store.read(instance);
    if (current !== undefined && current.epoch > owner.epoch)
      throw new OwnershipLostError(instance, owner.epoch, current.epoch);
    if (current?.epoch === owner.epoch) return;
    if (await store.write(instance, owner, current)) return;
  }
  throw new OwnershipLostError(instance, owner.epoch, undefined);
}

/** Throws OwnershipLostError unless the instance's fence holds our epoch. */
export async function checkEsFence(store: EpochFenceStore, instance: string, owner: OwnerEpoch): Promise<void> {
  const current = await store.read(instance);
  if (current?.epoch !== owner.epoch)
    throw new OwnershipLostError(
      instance,
      owner.epoch,
      current !== undefined && current.epoch > owner.epoch ? current.epoch : undefined,
    );
}

/** The fence documents in `index` of the cluster at `node`. */
export function elasticsearchFenceStore(node: string, index = ES_FENCE_INDEX): EpochFenceStore {
  const client = new Client({ node, maxRetries: 2, requestTimeout: 30_000 });
  return {
    async read(instance) {
      try {
        const { body } = await client.get({ index, id: instance, realtime: true });
        const doc = body as { _seq_no: number; _primary_term: number; _source: { epoch: number } };
        return { epoch: Number(doc._source.epoch), seqNo: doc._seq_no, primaryTerm: doc._primary_term };
      } catch (error) {
        if (error instanceof errors.ResponseError && error.statusCode === 404) return undefined;
        throw error;
      }
    },
    async write(instance, owner, expected) {
      const body = { epoch: owner.epoch, owner: owner.owner, claimed_at: new Date().toISOString() };
      try {
        await client.index(
          expected === undefined
            ? { index, id: instance, body, op_type: 'create', refresh: false }
            : {
                index,
                id: instance,
                body,
                if_seq_no: expected.seqNo,
                if_primary_term: expected.primaryTerm,
                refresh: false,
              },
        );
        return true;
      } catch (error) {
        if (error instanceof errors.ResponseError && error.statusCode === 409) return false;
        throw error;
      }
    },
    close: () => client.close(),
  };
}
