/**
 * What the Elasticsearch sink chaos tests read and compare: every document of the index with its
 * version, against the changelog oracle's last change per id (the document as
 * jobs/orders-to-elasticsearch.ts maps the row, its version the LSN; a deleted id absent), and the
 * dead-letter topic's size.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Client } from '@elastic/elasticsearch';
import { Kafka, logLevel } from 'kafkajs';
import type { ChangelogEntry } from '../../scripts/workload/oracle.ts';
import type { OrderRow } from '../../scripts/workload/orders-model.ts';
import { externalVersionOf } from '../../operators/sinks/elasticsearch/external-version.ts';

/** The document the job indexes for a row (jobs/orders-to-elasticsearch.ts). */
export function documentOf(row: OrderRow): unknown {
  const { id, customer_id, status, amount, currency, updated_at } = row;
  return { id, customer_id, status, amount: Number(amount), currency, updated_at };
}

export interface StoredDocument {
  readonly version: number;
  readonly source: unknown;
}

/** Every document of the index (after a refresh), by id. */
export async function readIndex(es: Client, index: string): Promise<Map<number, StoredDocument>> {
  await es.indices.refresh({ index }, { ignore: [404] });
  const docs = new Map<number, StoredDocument>();
  type Page = { _scroll_id?: string; hits: { hits: { _id: string; _version: number; _source: unknown }[] } };
  let { body } = await es.search<Page>(
    { index, scroll: '1m', size: 5_000, version: true, body: { query: { match_all: {} } } },
    { ignore: [404] },
  );
  for (let page = 0; page < 10_000 && body.hits?.hits.length > 0; page++) {
    for (const hit of body.hits.hits) docs.set(Number(hit._id), { version: hit._version, source: hit._source });
    if (body._scroll_id === undefined) break;
    ({ body } = await es.scroll<Page>({ scroll_id: body._scroll_id, scroll: '1m' }));
  }
  if (body._scroll_id !== undefined) await es.clearScroll({ scroll_id: body._scroll_id }, { ignore: [404] });
  return docs;
}

/** Messages in the dead-letter topic (0 if it was never created). */
export async function countDeadLetters(brokers: readonly string[], topic: string): Promise<number> {
  const admin = new Kafka({ clientId: 'chaos-es-dlq', brokers: [...brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic).catch(() => []);
    return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}

export interface IndexDifferences {
  readonly lost: number[];
  readonly resurrected: number[];
  readonly stale: string[];
  readonly unknown: number[];
  /** Live ids compared (the index must hold exactly these), and ids whose last change is a delete. */
  readonly compared: number;
  readonly deleted: number;
}

/** The index against the last change per id of the changelog oracle. */
export function indexDifferences(
  docs: ReadonlyMap<number, StoredDocument>,
  changelog: ReadonlyMap<number, readonly ChangelogEntry[]>,
): IndexDifferences {
  const last = new Map([...changelog].map(([id, list]) => [id, list.at(-1)] as const));
  const lost: number[] = [];
  const resurrected: number[] = [];
  const stale: string[] = [];
  let deleted = 0;
  for (const [id, change] of last) {
    const doc = docs.get(id);
    if (change?.row === null || change === undefined) {
      deleted += 1;
      if (doc !== undefined) resurrected.push(id);
    } else if (doc === undefined) lost.push(id);
    else if (
      doc.version !== externalVersionOf(change.position) ||
      !isDeepStrictEqual(doc.source, documentOf(change.row))
    ) {
      stale.push(
        `id ${id}: version ${doc.version} (want ${externalVersionOf(change.position)}), ${JSON.stringify(doc.source)} ≠ ${JSON.stringify(documentOf(change.row))}`,
      );
    }
  }
  const unknown = [...docs.keys()].filter((id) => !last.has(id));
  return { lost, resurrected, stale, unknown, compared: last.size - deleted, deleted };
}
