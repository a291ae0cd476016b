/**
 * Finds the real services for integration and chaos tests, in this order:
 *  1. the environment names them (KAFKA_BROKERS, DATABASE_URL, REDIS_URL, SCHEMA_REGISTRY_URL, ELASTICSEARCH_URL,
 *     KAFKA_CONNECT_URL);
 *  2. a Docker engine answers: testcontainers starts them;
 *  3. otherwise the project's own stack (`npm run stack -- up`) is brought up from packages.
 * CDCFLOW_STACK_SERVICES=kafka,postgres limits step 3 to some services (handy while developing).
 * The S3 store (CDCFLOW_S3_ENDPOINT) is exported only by step 3; tests needing it skip without it.
 * So is the conditional-write store (CDCFLOW_S3_CONDITIONAL_ENDPOINT), and only if it came up (optional).
 */
import {
  endpointEnv,
  s3EnvFor,
  stackEndpoints,
  stackS3Conditional,
  type ServiceEndpoints,
} from '../../scripts/stack/endpoints.ts';
import { selectServices } from '../../scripts/stack/services/index.ts';
import { up } from '../../scripts/stack/stack.ts';
import { dockerAnswers, startContainers } from './containers.ts';

const keys = Object.keys(endpointEnv) as (keyof ServiceEndpoints)[];

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (keys.every((k) => process.env[endpointEnv[k]] !== undefined)) return undefined;
  if (process.env['CDCFLOW_NO_DOCKER'] !== '1' && (await dockerAnswers())) {
    const containers = await startContainers();
    exportEndpoints(containers.endpoints);
    return containers.stop;
  }
  const wanted = (process.env['CDCFLOW_STACK_SERVICES'] ?? '').split(',').filter(Boolean);
  const services = selectServices(wanted, true);
  await up(services, (line) => console.log(`[stack] ${line}`));
  exportEndpoints(stackEndpoints);
  // The object store is optional for a run that names the others itself (its tests skip then).
  if (services.some((s) => s.name === 's3proxy')) for (const [k, v] of Object.entries(s3EnvFor())) process.env[k] ??= v;
  const conditional = services.find((s) => s.name === 's3proxy-conditional');
  if (conditional !== undefined && (await conditional.ready().catch(() => false)))
    process.env['CDCFLOW_S3_CONDITIONAL_ENDPOINT'] ??= stackS3Conditional.endpoint;
  return undefined;
}

function exportEndpoints(endpoints: ServiceEndpoints): void {
  for (const k of keys) process.env[endpointEnv[k]] ??= endpoints[k];
}
