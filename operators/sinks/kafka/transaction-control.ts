/**
 * Transaction-coordinator requests that do not need a producer: committing a transaction by its
 * stored (transactional id, producer id, epoch) — the "resume" a restarted job needs — and fencing
 * a transactional id. Both go straight to the coordinator as EndTxn / InitProducerId.
 */
import type { InternalClient, TxnBroker } from './kafkajs-internals.ts';
import { retryWithBackoff } from '../../../state/backoff.ts';
import { KafkaSinkError } from './kafka-sink-error.ts';

/** What checkpoint metadata stores for a pre-committed Kafka transaction. */
export interface KafkaTransactionHandle {
  readonly transactionalId: string;
  /** Which of the sink subtask's transactional ids this is (the id's last segment). */
  readonly slot: number;
  /** INT64 as a decimal string: JSON numbers lose precision above 2^53. */
  readonly producerId: string;
  readonly producerEpoch: number;
  /** Records sent in it; 0 means no partition joined it, so there is nothing to commit. */
  readonly records: number;
  readonly preparedAtMs: number;
}

/**
 * - `committed`: the coordinator committed it now, or had already (a retried EndTxn is a no-op);
 * - `superseded`: the id has a newer epoch (or producer id) than the handle, so this transaction
 *   ended earlier. The sink only bumps an id's epoch after its recorded transaction committed, so
 *   this means "committed before" — unless the broker aborted it on `transaction.timeout.ms`.
 */
export type EndTxnOutcome = 'committed' | 'superseded';

const SUPERSEDED = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'INVALID_PRODUCER_ID_MAPPING']);
const STALE_COORDINATOR = new Set([
  'NOT_COORDINATOR_FOR_GROUP',
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'NOT_COORDINATOR',
  'COORDINATOR_NOT_AVAILABLE',
]);
// Another EndTxn or an InitProducerId abort is still writing its markers; the coordinator wants a retry.
const BUSY = new Set([
  'CONCURRENT_TRANSACTIONS',
  'GROUP_LOAD_IN_PROGRESS',
  'COORDINATOR_LOAD_IN_PROGRESS',
  'REQUEST_TIMED_OUT',
]);
const PRODUCER_FENCED_CODE = 90;

export interface ControlOptions {
  readonly transactionTimeoutMs: number;
  /** @default 60000 */
  readonly retryForMs?: number;
}

export class TransactionControl {
  constructor(
    private readonly client: InternalClient,
    private readonly options: ControlOptions,
  ) {}

  /** EndTxn(commit) for a transaction another producer (possibly a dead process) prepared. */
  async commit(handle: KafkaTransactionHandle): Promise<EndTxnOutcome> {
    if (handle.records === 0) return 'committed';
    return this.withCoordinator(handle.transactionalId, async (broker) => {
      try {
        await broker.endTxn({
          transactionalId: handle.transactionalId,
          producerId: handle.producerId,
          producerEpoch: handle.producerEpoch,
          transactionResult: true,
        });
        return 'committed';
      } catch (error) {
        if (SUPERSEDED.has(errorType(error)) || errorCode(error) === PRODUCER_FENCED_CODE) return 'superseded';
        throw error;
      }
    });
  }

  /**
   * InitProducerId for `transactionalId`: aborts whatever transaction it has open and bumps its
   * epoch, so any producer still holding the old epoch (a zombie) is fenced.
   */
  async fence(transactionalId: string): Promise<void> {
    await this.withCoordinator(transactionalId, (broker) =>
      broker.initProducerId({ transactionalId, transactionTimeout: this.options.transactionTimeoutMs }),
    );
  }

  private async withCoordinator<R>(transactionalId: string, request: (broker: TxnBroker) => Promise<R>): Promise<R> {
    try {
      return await retryWithBackoff(
        async () => {
          try {
            await this.client.connect();
            const broker = await this.client.transactionCoordinator(transactionalId);
            return await request(broker);
          } catch (error) {
            if (STALE_COORDINATOR.has(errorType(error)))
              await this.client.cluster.refreshMetadata().catch(() => undefined);
            throw error;
          }
        },
        {
          initialDelayMs: 50,
          maxDelayMs: 2_000,
          retryForMs: this.options.retryForMs ?? 60_000,
          retryIf: coordinatorRetriable,
        },
      );
    } catch (error) {
      const type = errorType(error);
      throw new KafkaSinkError(
        `transaction coordinator request for '${transactionalId}' failed (${type || describe(error)}); check the broker, the job will retry on restore`,
        {
          retriable: true,
          cause: error,
        },
      );
    }
  }
}

/** The coordinator is busy, moved, or not reachable right now: worth another request. */
function coordinatorRetriable(error: unknown): boolean {
  const type = errorType(error);
  return BUSY.has(type) || STALE_COORDINATOR.has(type) || isConnectionError(error);
}

function errorType(error: unknown): string {
  const type = (error as { type?: unknown } | null)?.type;
  return typeof type === 'string' ? type : '';
}

function errorCode(error: unknown): unknown {
  return (error as { code?: unknown } | null)?.code;
}

function isConnectionError(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return (
    name === 'KafkaJSConnectionError' ||
    name === 'KafkaJSRequestTimeoutError' ||
    name === 'KafkaJSNumberOfRetriesExceeded' ||
    name === 'KafkaJSBrokerNotFound'
  );
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
