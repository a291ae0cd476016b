import { Client, errors } from '@elastic/elasticsearch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';

interface Doc {
  readonly name: string;
}
interface GetBody {
  readonly _version: number;
  readonly _source: Doc;
}
interface BulkItem {
  readonly index?: {
    readonly _id: string;
    readonly status: number;
    readonly _version?: number;
    readonly error?: { readonly type: string };
  };
}
interface BulkBody {
  readonly errors: boolean;
  readonly items: readonly BulkItem[];
}

// External versioning is what the Elasticsearch sink relies on to make replays idempotent:
// a write carrying an older version than the stored one must bounce, not overwrite.
describe('elasticsearch (real server)', () => {
  let client: Client;
  const index = uniqueName('smoke');

  beforeAll(() => {
    client = new Client({ node: testEndpoints().elasticsearchUrl, maxRetries: 2, requestTimeout: 30_000 });
  });
  afterAll(async () => {
    await client.indices.delete({ index }, { ignore: [404] });
    await client.close();
  });

  async function put(id: string, version: number, doc: Doc): Promise<void> {
    await client.index({ index, id, version, version_type: 'external', body: doc, refresh: true });
  }

  async function stored(id: string): Promise<GetBody> {
    const { body } = await client.get({ index, id });
    return body as GetBody;
  }

  it('rejects an older external version and keeps the newer document', async () => {
    await put('a', 5, { name: 'five' });

    const rejected = await put('a', 3, { name: 'three' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(rejected).toBeInstanceOf(errors.ResponseError);
    const response = rejected as errors.ResponseError<{ error: { type: string } }>;
    expect(response.statusCode).toBe(409);
    expect(response.body.error.type).toBe('version_conflict_engine_exception');
    expect(await stored('a')).toMatchObject({ _version: 5, _source: { name: 'five' } });

    await put('a', 7, { name: 'seven' });
    expect(await stored('a')).toMatchObject({ _version: 7, _source: { name: 'seven' } });
  });

  it('reports external-version conflicts per item in a bulk request', async () => {
    await put('b', 10, { name: 'ten' });

    const { body } = await client.bulk({
      refresh: true,
      body: [
        { index: { _index: index, _id: 'b', version: 4, version_type: 'external' } },
        { name: 'four' },
        { index: { _index: index, _id: 'c', version: 2, version_type: 'external' } },
        { name: 'two' },
      ],
    });
    const bulk = body as BulkBody;

    expect(bulk.errors).toBe(true);
    const [stale, fresh] = bulk.items.map((item) => item.index);
    expect(stale).toMatchObject({ _id: 'b', status: 409, error: { type: 'version_conflict_engine_exception' } });
    expect(fresh).toMatchObject({ _id: 'c', status: 201, _version: 2 });
    expect(await stored('b')).toMatchObject({ _version: 10, _source: { name: 'ten' } });
    expect(await stored('c')).toMatchObject({ _version: 2, _source: { name: 'two' } });
  });
});
