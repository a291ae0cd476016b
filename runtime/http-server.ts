/**
 * The job's HTTP server: the REST API (rest/rest-api.ts) plus /metrics, /healthz and /api/job.
 * It registers its address in the checkpoint root (rest/registration.ts) so `cdcflow` finds it.
 */
import { join } from 'node:path';
import type { JobMetrics } from './metrics.ts';
import type { JobControl } from './rest/job-control.ts';
import { register } from './rest/registration.ts';
import { buildRestApi, type HealthVerdict } from './rest/rest-api.ts';
import { resolveRestToken } from './rest/rest-token.ts';
import type { SloReport } from './signals/slo.ts';

export interface HttpServerHandle {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export interface HttpServerOptions {
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
  readonly token: string | undefined;
  readonly tokenFile: string | undefined;
  readonly metrics: JobMetrics;
  readonly control: JobControl;
  readonly health?: () => HealthVerdict;
  readonly slo?: () => Promise<SloReport>;
}

export async function startHttpServer(o: HttpServerOptions): Promise<HttpServerHandle> {
  const { control } = o;
  const jobDir = join(control.checkpointRoot, control.jobName);
  const { token, reference } = await resolveRestToken({ host: o.host, token: o.token, tokenFile: o.tokenFile, jobDir });
  const app = buildRestApi({
    control,
    metrics: o.metrics,
    token,
    ...(o.health === undefined ? {} : { health: o.health }),
    ...(o.slo === undefined ? {} : { slo: o.slo }),
  });
  await app.listen({ host: o.host, port: o.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : o.port;
  const url = `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`;
  let unregister: () => Promise<void>;
  try {
    unregister = await register(control.checkpointRoot, { job: control.jobName, url, token: reference });
  } catch (error) {
    await app.close();
    throw error;
  }
  return {
    port,
    url,
    close: async () => {
      await unregister();
      await app.close();
    },
  };
}
