/**
 * The one Elasticsearch call the sink makes, behind an interface of ours so another client (or
 * OpenSearch's) can replace @elastic/elasticsearch 7.17 without touching the sink.
 */
import { Client, errors } from '@elastic/elasticsearch';

/** One line pair (or single line, for a delete) of a bulk request body. */
export type BulkLine = Readonly<Record<string, unknown>>;

export interface BulkItemResult {
  readonly status: number;
  readonly errorType: string | undefined;
  readonly errorReason: string | undefined;
}

/** Either the per-item results, in request order, or a whole-request failure. */
export type BulkResult =
  | { readonly ok: true; readonly items: readonly BulkItemResult[] }
  | { readonly ok: false; readonly status: number | undefined; readonly message: string };

export interface BulkClient {
  bulk(lines: readonly BulkLine[], refresh: boolean): Promise<BulkResult>;
  close(): Promise<void>;
}

interface RawItem {
  readonly status: number;
  readonly error?: { readonly type?: string; readonly reason?: string };
}

/** @elastic/elasticsearch 7.17 (talks to ES 7.x; the server must report the `default` flavor). */
export function elasticsearchBulkClient(options: { node: string; requestTimeoutMs?: number }): BulkClient {
  // The sink retries with its own back-off and per-item classification; the client must not.
  const client = new Client({ node: options.node, maxRetries: 0, requestTimeout: options.requestTimeoutMs ?? 30_000 });
  return {
    async bulk(lines, refresh) {
      try {
        const { body } = await client.bulk({ body: [...lines], refresh });
        const items = (body as { items: Record<string, RawItem>[] }).items.map((entry): BulkItemResult => {
          const item = Object.values(entry)[0] ?? { status: 0 };
          return { status: item.status, errorType: item.error?.type, errorReason: item.error?.reason };
        });
        return { ok: true, items };
      } catch (error) {
        const status = error instanceof errors.ResponseError ? (error.statusCode ?? undefined) : undefined;
        return { ok: false, status, message: error instanceof Error ? error.message : String(error) };
      }
    },
    close: () => client.close(),
  };
}
