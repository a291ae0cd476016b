/** /metrics (Prometheus), /healthz and /api/job (JSON status) for operators and dashboards. */
import { createServer } from 'node:http';
import type { JobMetrics } from './metrics.ts';

export interface HttpServerHandle {
  readonly port: number;
  close(): Promise<void>;
}

/** What /healthz answers: 200 `ok`, or 503 with the reasons (runtime/job-health.ts decides). */
export interface HealthVerdict {
  readonly healthy: boolean;
  readonly reasons: readonly string[];
}

export function startHttpServer(port: number, metrics: JobMetrics, status: () => unknown, health: () => HealthVerdict = () => ({ healthy: true, reasons: [] })): Promise<HttpServerHandle> {
  const server = createServer((request, response) => {
    const reply = (code: number, type: string, body: string) => {
      response.writeHead(code, { 'content-type': type });
      response.end(body);
    };
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      metrics
        .aggregated()
        .then((registry) => registry.metrics())
        .then(
          (text) => reply(200, metrics.registry.contentType, text),
          (error: unknown) => reply(500, 'text/plain', String(error)),
        );
    } else if (path === '/healthz') {
      const verdict = health();
      if (verdict.healthy) reply(200, 'text/plain', 'ok\n');
      else reply(503, 'text/plain', `unhealthy: ${verdict.reasons.join('; ')}\n`);
    }
    else if (path === '/api/job') reply(200, 'application/json', JSON.stringify(status(), null, 2));
    else reply(404, 'text/plain', 'not found: try /metrics, /healthz or /api/job\n');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address !== null ? address.port : port,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}
