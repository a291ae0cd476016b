/**
 * The web UI (runtime/ui/web/, bundled by scripts/build-ui.mjs into runtime/ui/dist/): `GET /` and
 * `GET /ui/<asset>` serve the page, `GET /jobs/:name/overview` the snapshot it polls. Registered
 * on the job's REST server in one call; nothing is loaded from outside the machine.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { JobMetrics } from '../metrics.ts';
import type { JobControl } from '../rest/job-control.ts';
import { CheckpointHistory } from './checkpoint-history.ts';
import { buildOverview } from './overview.ts';
import type { JobOverview } from './overview-types.ts';

export const UI_ASSET_DIR = join(dirname(fileURLToPath(import.meta.url)), 'dist');

export interface UiRouteOptions {
  readonly control: JobControl;
  readonly metrics: JobMetrics;
  readonly health?: () => JobOverview['health'];
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  html: 'text/html; charset=utf-8',
  map: 'application/json',
};

export function registerUi(app: FastifyInstance, o: UiRouteOptions): void {
  const history = new CheckpointHistory(o.metrics);
  const asset = async (file: string): Promise<Buffer | undefined> => {
    try {
      return await readFile(join(UI_ASSET_DIR, file));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  };

  app.get('/', async (_request, reply) => {
    const page = await asset('index.html');
    if (page === undefined)
      return reply
        .code(503)
        .type('text/plain')
        .send('The web UI is not built: run `npm run build:ui` (npm ci, npm test and npm run demo build it).\n');
    return reply
      .type(CONTENT_TYPES['html'] as string)
      .header('cache-control', 'no-cache')
      .send(page);
  });

  app.get('/ui/:file', async (request, reply) => {
    const { file } = request.params as { file: string };
    const ext = /^[A-Za-z0-9_-]+\.([a-z]+)$/.exec(file)?.[1];
    const body = ext === undefined || CONTENT_TYPES[ext] === undefined ? undefined : await asset(file);
    if (body === undefined) return reply.code(404).send({ errors: [`no such UI asset: ${file}`] });
    return reply
      .type(CONTENT_TYPES[ext as string] as string)
      .header('cache-control', 'no-cache')
      .send(body);
  });

  app.get('/jobs/:name/overview', async (request, reply) => {
    const { name } = request.params as { name: string };
    if (name !== o.control.jobName)
      return reply.code(404).send({ errors: [`no job '${name}' here: this server runs '${o.control.jobName}'`] });
    return buildOverview({ control: o.control, metrics: o.metrics, history, health: o.health });
  });
}
