/**
 * The job's HTTP API, modelled on Flink's REST API: read the plan, status and checkpoints; take
 * a savepoint, stop, cancel. Mutating calls need the bearer token; bodies are schema-checked;
 * every error is JSON `{ "errors": [...] }` (Flink's shape). Also /metrics, /livez, /healthz, /readyz, /api/job.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CheckpointNotFoundError } from '../../checkpoints/index.ts';
import { inspectCheckpoint, listCheckpoints } from '../checkpoint-catalog.ts';
import { CdcflowError } from '../../state/errors.ts';
import type { JobMetrics } from '../metrics.ts';
import { registerUi } from '../ui/ui-routes.ts';
import type { JobControl } from './job-control.ts';
import { bearerMatches } from './rest-token.ts';
import type { SloReport } from '../signals/slo.ts';

/** What /healthz answers: 200 `ok`, or 503 with the reasons. */
export interface HealthVerdict {
  readonly healthy: boolean;
  readonly reasons: readonly string[];
}

/** What /healthz sends for `verdict` (the job's server and a group process's): 200 `ok`, or 503 with the reasons. */
export function replyHealth(reply: FastifyReply, verdict: HealthVerdict): FastifyReply {
  return verdict.healthy
    ? reply.type('text/plain').send('ok\n')
    : reply
        .code(503)
        .type('text/plain')
        .send(`unhealthy: ${verdict.reasons.join('; ')}\n`);
}

export interface RestApiOptions {
  readonly control: JobControl;
  readonly metrics: JobMetrics;
  readonly token: string;
  /** @default always healthy */
  readonly health?: () => HealthVerdict;
  /** The SLOs' state (`/readyz`, `slo` in `/api/job` and `GET /jobs/:name`). @default none declared: ready */
  readonly slo?: () => Promise<SloReport>;
}

const savepointBody = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, "may use only letters, digits, '-', '_' and '.'")
    .optional(),
});
const stopBody = z.strictObject({
  savepoint: z.boolean().optional(),
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, "may use only letters, digits, '-', '_' and '.'")
    .optional(),
});
const cancelBody = z.strictObject({});

/** Paths this server knows and the methods each allows: the rest are 404, a wrong method is 405. */
const ROUTES: readonly { readonly pattern: RegExp; readonly methods: readonly string[] }[] = [
  { pattern: /^\/jobs\/?$/, methods: ['GET'] },
  { pattern: /^\/jobs\/[^/]+\/?$/, methods: ['GET', 'PATCH'] },
  { pattern: /^\/jobs\/[^/]+\/checkpoints\/?$/, methods: ['GET'] },
  { pattern: /^\/jobs\/[^/]+\/checkpoints\/[^/]+\/?$/, methods: ['GET'] },
  { pattern: /^\/jobs\/[^/]+\/savepoints\/?$/, methods: ['POST'] },
  { pattern: /^\/jobs\/[^/]+\/stop\/?$/, methods: ['POST'] },
  { pattern: /^\/metrics$/, methods: ['GET'] },
  { pattern: /^\/healthz$/, methods: ['GET'] },
  { pattern: /^\/livez$/, methods: ['GET'] },
  { pattern: /^\/api\/job$/, methods: ['GET'] },
  // --- on-call signals: readiness from the SLOs ---
  { pattern: /^\/readyz$/, methods: ['GET'] },
];

class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export function buildRestApi(o: RestApiOptions): FastifyInstance {
  const { control } = o;
  const app = Fastify({ logger: false });
  const slo =
    o.slo ??
    (() => Promise.resolve<SloReport>({ ok: true, failing: [], slos: [], evaluatedAt: new Date().toISOString() }));

  // An empty body is an empty object: `curl -X POST .../stop` needs no `-d '{}'`.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, {});
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new HttpError(400, 'the body is not valid JSON'), undefined);
    }
  });

  app.setErrorHandler((error: unknown, _request, reply) => {
    const status =
      error instanceof HttpError ? error.statusCode : error instanceof CheckpointNotFoundError ? 404 : statusOf(error);
    void reply.code(status).send({ errors: [error instanceof Error ? error.message : String(error)] });
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const route = ROUTES.find((r) => r.pattern.test(path));
    if (route !== undefined) {
      void reply
        .code(405)
        .header('allow', route.methods.join(', '))
        .send({ errors: [`${request.method} is not allowed on ${path}; use ${route.methods.join(' or ')}`] });
      return;
    }
    void reply
      .code(404)
      .send({ errors: [`no such resource: ${path}. Try GET /jobs, /jobs/${control.jobName}, /metrics, /healthz`] });
  });

  const job = (request: FastifyRequest): string => {
    const { name } = request.params as { name: string };
    if (name !== control.jobName)
      throw new HttpError(404, `no job '${name}' here: this server runs '${control.jobName}'`);
    return name;
  };
  const authorize = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!bearerMatches(request.headers.authorization, o.token)) {
      await reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send({
          errors: [
            'this call needs the job\'s token: send "Authorization: Bearer <token>" (the CLI reads it from the checkpoint root)',
          ],
        });
    }
  };
  const body = <T>(schema: z.ZodType<T>, request: FastifyRequest): T => {
    const parsed = schema.safeParse(request.body ?? {});
    if (parsed.success) return parsed.data;
    const problems = parsed.error.issues.flatMap((i) =>
      i.code === 'unrecognized_keys'
        ? i.keys.map((k) => `${k}: unknown field`)
        : [`${i.path.join('.') || 'body'}: ${i.message}`],
    );
    throw new HttpError(400, `invalid body: ${problems.join('; ')}`);
  };

  app.get('/jobs', () => ({ jobs: [{ id: control.jobName, name: control.jobName, status: control.status().state }] }));

  app.get('/jobs/:name', async (request) => {
    const name = job(request);
    const status = control.status();
    const { exceptions, ...rest } = status;
    return {
      name,
      ...rest,
      plan: { operators: control.plan() },
      exceptions: { history: exceptions },
      slo: await slo(),
    };
  });

  app.get('/jobs/:name/checkpoints', async (request) => {
    const name = job(request);
    const catalog = await listCheckpoints(control.checkpointRoot, name);
    return { ...catalog, latest: control.status().lastCompletedCheckpoint, counts: control.status().checkpoints };
  });

  app.get('/jobs/:name/checkpoints/:id', async (request) => {
    const name = job(request);
    return inspectCheckpoint(control.checkpointRoot, name, (request.params as { id: string }).id);
  });

  app.post('/jobs/:name/savepoints', { preHandler: authorize }, async (request) => {
    job(request);
    const { name } = body(savepointBody, request);
    const location = await control.savepoint(name);
    return { location };
  });

  app.post('/jobs/:name/stop', { preHandler: authorize }, async (request) => {
    job(request);
    const { savepoint, name } = body(stopBody, request);
    return control.stop({
      savepoint: savepoint === true || name !== undefined,
      ...(name === undefined ? {} : { name }),
    });
  });

  app.patch('/jobs/:name', { preHandler: authorize }, async (request, reply) => {
    job(request);
    body(cancelBody, request);
    await control.cancel();
    return reply.code(202).send({ state: 'cancelling' });
  });

  app.get('/metrics', async (_request, reply) => {
    const registry = await o.metrics.aggregated();
    return reply.type(o.metrics.registry.contentType).send(await registry.metrics());
  });

  app.get('/healthz', (_request, reply) =>
    replyHealth(reply, (o.health ?? (() => ({ healthy: true, reasons: [] })))()),
  );

  // Liveness: the process answers. Nothing evaluated, so a probe never kills a job that is slow
  // but progressing (a long restore is not a checkpoint for /healthz either).
  app.get('/livez', (_request, reply) => reply.type('text/plain').send('ok\n'));

  app.get('/api/job', async () => ({ ...(control.legacyStatus() as object), slo: await slo() }));

  // --- on-call signals (runtime/signals/slo.ts): /readyz is 200 while every SLO is met, else 503 naming those that are not ---
  app.get('/readyz', async (_request, reply) => {
    const report = await slo();
    const body = { ready: report.ok, failing: report.failing, slos: report.slos, evaluatedAt: report.evaluatedAt };
    return reply.code(report.ok ? 200 : 503).send(body);
  });

  registerUi(app, { control, metrics: o.metrics, ...(o.health === undefined ? {} : { health: o.health }) });

  return app;
}

function statusOf(error: unknown): number {
  const code = (error as { statusCode?: unknown }).statusCode;
  if (typeof code === 'number' && code >= 400 && code < 600) return code;
  // A job that cannot do it now (not running, a savepoint in flight, a declined checkpoint) is a
  // conflict with its state; only our own bugs are 500s.
  return error instanceof CdcflowError && error.domain === 'internal' ? 500 : 409;
}
