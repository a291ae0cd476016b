import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A schema registry in ~40 lines, enough for the real `@kafkajs/confluent-schema-registry` client
 * to register and fetch schemas: unit tests and the decode benchmark use the real client without a
 * JVM. Not for production: schemas live in memory, compatibility is not checked. Ids in
 * `failWith` answer with that HTTP status instead (e.g. 503 to simulate an outage).
 */
export interface FakeRegistry {
  readonly url: string;
  readonly failWith: Map<number, number>;
  readonly requests: string[];
  close(): Promise<void>;
}

const JSON_TYPE = { 'content-type': 'application/vnd.schemaregistry.v1+json' };

export async function startFakeRegistry(): Promise<FakeRegistry> {
  const schemas: string[] = [];
  const failWith = new Map<number, number>();
  const requests: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      requests.push(`${req.method} ${req.url}`);
      const reply = (status: number, payload: unknown): void => {
        res.writeHead(status, JSON_TYPE).end(JSON.stringify(payload));
      };
      const byId = /^\/schemas\/ids\/(\d+)/.exec(req.url ?? '');
      if (req.method === 'GET' && byId !== null) {
        const id = Number(byId[1]);
        const failure = failWith.get(id);
        if (failure !== undefined) return reply(failure, { error_code: failure * 100, message: 'simulated failure' });
        const schema = schemas[id - 1];
        return schema === undefined
          ? reply(404, { error_code: 40403, message: 'Schema not found' })
          : reply(200, { schema });
      }
      if (req.method === 'GET' && req.url?.startsWith('/config/'))
        return reply(404, { error_code: 40401, message: 'Subject not found' });
      if (req.method === 'PUT' && req.url?.startsWith('/config/')) return reply(200, JSON.parse(body));
      if (req.method === 'POST' && /^\/subjects\/[^/]+\/versions$/.test(req.url ?? '')) {
        const schema = (JSON.parse(body) as { schema: string }).schema;
        const known = schemas.indexOf(schema);
        if (known < 0) schemas.push(schema);
        return reply(200, { id: known < 0 ? schemas.length : known + 1 });
      }
      return reply(404, { error_code: 40400, message: `no route for ${req.method} ${req.url}` });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    failWith,
    requests,
    close: () => new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve()))),
  };
}
