/**
 * Writes buffered document actions in bulk requests until every one is applied, found stale
 * (409: already at this version or newer) or dead-lettered. Items the cluster could not take
 * right now (429, 5xx) and failed requests are retried with exponential back-off; after
 * `maxAttempts` the flush fails, which fails the checkpoint and lets the job restore and replay.
 */
import type { OperatorMetrics } from '../../operator.ts';
import { SinkMetrics } from '../sink-metrics.ts';
import type { BulkClient, BulkLine } from './bulk-client.ts';
import type { DocumentAction } from './document-action.ts';
import type { DocumentDeadLetterWriter, RejectedDocument } from './document-dead-letters.ts';
import { retryWithBackoff } from '../../../state/backoff.ts';
import { ElasticsearchSinkError } from './elasticsearch-sink-error.ts';
import { itemOutcome, requestRetriable } from './item-outcome.ts';

export interface BulkWriterOptions {
  readonly maxActionsPerRequest: number;
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly refresh: boolean;
}

const MAX_VERSION = Number.MAX_SAFE_INTEGER;

export class BulkWriter {
  private readonly sinkMetrics: SinkMetrics;

  constructor(
    private readonly client: BulkClient,
    private readonly deadLetters: DocumentDeadLetterWriter | undefined,
    private readonly metrics: OperatorMetrics,
    private readonly options: BulkWriterOptions,
    private readonly now: () => number = Date.now,
    private readonly stage = 'elasticsearch',
  ) {
    this.sinkMetrics = new SinkMetrics(metrics, 'elasticsearch');
    metrics.count('cdcflow_dead_letters_total', { stage, reason: 'sink-refused' }, 0);
  }

  async write(actions: readonly DocumentAction[]): Promise<void> {
    const dead: RejectedDocument[] = [];
    let pending = actions.filter((action) => {
      if (Number.isSafeInteger(action.version) && action.version >= 0 && action.version <= MAX_VERSION) return true;
      dead.push(
        rejected(
          action,
          0,
          'invalid_version',
          `external version must be an integer in [0, 2^53): got ${action.version}`,
        ),
      );
      return false;
    });
    // Each attempt sends what is still pending; items applied, stale or dead-lettered leave the set.
    await retryWithBackoff(
      async (attempt) => {
        if (pending.length === 0) return;
        const retry: DocumentAction[] = [];
        let lastError = '';
        for (let start = 0; start < pending.length; start += this.options.maxActionsPerRequest) {
          const chunk = pending.slice(start, start + this.options.maxActionsPerRequest);
          lastError = (await this.send(chunk, retry, dead)) ?? lastError;
        }
        pending = retry;
        if (pending.length === 0) return;
        this.metrics.count('cdcflow_es_sink_retries_total', {}, pending.length);
        throw new ElasticsearchSinkError(
          `${pending.length} documents still not accepted after ${attempt} attempts (${lastError}); check the cluster's health`,
          { retriable: true },
        );
      },
      {
        maxAttempts: this.options.maxAttempts,
        initialDelayMs: this.options.initialBackoffMs,
        maxDelayMs: this.options.maxBackoffMs,
      },
    );
    await this.deadLetter(dead);
  }

  /** One bulk request; sorts its items into done, `retry` and `dead`. Returns why items must retry. */
  private async send(
    chunk: readonly DocumentAction[],
    retry: DocumentAction[],
    dead: RejectedDocument[],
  ): Promise<string | undefined> {
    const result = await this.client.bulk(chunk.flatMap(toLines), this.options.refresh);
    if (!result.ok) {
      if (!requestRetriable(result.status)) {
        throw new ElasticsearchSinkError(`bulk request refused (${result.status ?? 'no status'}): ${result.message}`, {
          domain: 'user',
        });
      }
      retry.push(...chunk);
      return `request: ${result.status ?? result.message}`;
    }
    // Acknowledged means visible to GET (realtime); search sees it after the next refresh (1 s by default).
    const visibleAt = this.now();
    const counts = { applied: 0, stale: 0 };
    const appliedSourceTs: number[] = [];
    let reason: string | undefined;
    chunk.forEach((action, i) => {
      const item = result.items[i] ?? { status: 0, errorType: 'missing_item', errorReason: 'no result for this item' };
      const outcome = itemOutcome(item.status, action.kind);
      if (outcome === 'applied' && action.sourceTsMs !== undefined) appliedSourceTs.push(action.sourceTsMs);
      if (outcome === 'applied' || outcome === 'stale') counts[outcome] += 1;
      else if (outcome === 'retry') {
        retry.push(action);
        reason = `item: ${item.status} ${item.errorType ?? ''}`;
      } else dead.push(rejected(action, item.status, item.errorType ?? 'unknown', item.errorReason ?? ''));
    });
    if (counts.applied > 0)
      this.metrics.count('cdcflow_es_sink_documents_total', { outcome: 'applied' }, counts.applied);
    if (counts.stale > 0) this.metrics.count('cdcflow_es_sink_documents_total', { outcome: 'stale' }, counts.stale);
    // A stale item's own change is not what is visible (a newer version is), so it has no freshness.
    this.sinkMetrics.visible(appliedSourceTs, visibleAt, counts.applied);
    return reason;
  }

  private async deadLetter(dead: readonly RejectedDocument[]): Promise<void> {
    if (dead.length === 0) return;
    if (this.deadLetters === undefined) {
      const first = dead[0] as RejectedDocument;
      throw new ElasticsearchSinkError(
        `${dead.length} documents refused by Elasticsearch (first: ${first.index}/${first.id} ${first.errorType}: ${first.reason}); fix the mapping or give the sink a deadLetters topic`,
        { domain: 'user' },
      );
    }
    // Before the checkpoint acks: a dead-lettered document is never just dropped.
    await this.deadLetters.write(dead);
    for (const d of dead) this.metrics.count('cdcflow_es_sink_dead_letters_total', { error_type: d.errorType });
    this.metrics.count('cdcflow_dead_letters_total', { stage: this.stage, reason: 'sink-refused' }, dead.length);
  }
}

function toLines(action: DocumentAction): BulkLine[] {
  const meta = { _index: action.index, _id: action.id, version: action.version, version_type: 'external_gte' };
  return action.kind === 'delete' ? [{ delete: meta }] : [{ index: meta }, action.document as BulkLine];
}

function rejected(action: DocumentAction, status: number, errorType: string, reason: string): RejectedDocument {
  return {
    kind: action.kind,
    index: action.index,
    id: action.id,
    version: action.version,
    document: action.kind === 'index' ? action.document : null,
    status,
    errorType,
    reason,
    ...(action.origin === undefined ? {} : { origin: action.origin }),
  };
}
