/**
 * The job as the Kubernetes StatefulSet runs it, without a cluster: the container's args through
 * the package's `cdcflow` bin (the image's ENTRYPOINT), the environment of the rendered ConfigMap
 * (scripts/deploy/k8s/overlays/example) plus the documented Secret keys, the config file of the
 * mounted ConfigMap. Only what a laptop cannot be is replaced: the volumes' paths (a temp
 * folder), the endpoints (the test stack), the S3 checkpoint root (a local folder until the S3
 * storage is merged), unique names, a free port. Then what the kubelet does: the startup/liveness
 * and readiness probes must answer 200 on the manifest's paths, and SIGTERM to the bin's process
 * (PID 1 in the pod) must end in a final checkpoint, its rows committed, nothing prepared and
 * exit 0 well within terminationGracePeriodSeconds.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import type { WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { JobProcess } from '../support/job-process.ts';
import { DEFAULT_LAYOUT, renderings } from '../support/k8s-manifest-checks.ts';
import type { K8sObject } from '../support/kustomize.ts';
import { dropOrdersTable, readOrdersTable } from '../support/orders-check.ts';
import { WorkloadFeeder } from '../support/workload-feeder.ts';

// Source times of now: the manifest's freshness SLO (/readyz) judges them (the default start is fixed in the past).
const WORKLOAD: WorkloadOptions = {
  keys: 300,
  events: 3_000,
  duplicateFraction: 0.02,
  seed: 20_261_205,
  startTsMs: Date.now(),
  tickMs: 1,
};
const { databaseUrl, kafkaBrokers } = testEndpoints();
const jobName = uniqueName('k8s-orders');
const topic = uniqueName('k8s-orders-topic');
const table = uniqueName('k8s_orders').replace(/-/g, '_');
const work = mkdtempSync(join(tmpdir(), 'cdcflow-k8s-pod-'));
let passed = false;

afterAll(async () => {
  if (passed) {
    const admin = new Kafka({
      clientId: 'k8s-cleanup',
      brokers: kafkaBrokers.split(','),
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
    await dropOrdersTable(databaseUrl, table, jobName);
    rmSync(work, { recursive: true, force: true });
  } else console.log(`k8s pod contract: topic ${topic}, table ${table}, ${work} kept`);
});

type Json = Record<string, unknown>;
const at = (o: unknown, ...path: (string | number)[]): unknown =>
  path.reduce<unknown>((v, k) => (v === null || typeof v !== 'object' ? undefined : (v as Json)[k]), o);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Polls `url` until it answers 200; the last status and body otherwise. */
async function until200(url: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    const response = await fetch(url).catch(() => undefined);
    if (response?.status === 200) return '200';
    if (response !== undefined) last = `${response.status} ${await response.text()}`;
    await new Promise((r) => setTimeout(r, 250));
  }
  return last;
}

describe('the job as the StatefulSet runs it', () => {
  it('probes answer on the manifest paths; SIGTERM to the bin ends in a final checkpoint and exit 0', async () => {
    const objects = renderings(DEFAULT_LAYOUT.k8sDir).get('overlays/example') as K8sObject[];
    const sts = objects.find((o) => o.kind === 'StatefulSet') as K8sObject;
    const pod = at(sts, 'spec', 'template', 'spec') as Json;
    const container = (pod['containers'] as Json[])[0] as Json;
    const configMap = (name: unknown) =>
      (objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name)?.['data'] ?? {}) as Record<
        string,
        string
      >;

    // The pod's environment, in the kubelet's order: envFrom, then env.
    const env: Record<string, string> = {};
    for (const from of container['envFrom'] as Json[]) Object.assign(env, configMap(at(from, 'configMapRef', 'name')));
    Object.assign(env, { DATABASE_URL: databaseUrl, CDCFLOW_REST_TOKEN: 'k8s-test-token-0123456789' });
    for (const e of container['env'] as Json[])
      env[String(e['name'])] =
        at(e, 'valueFrom', 'fieldRef', 'fieldPath') === 'metadata.name' ? `${sts.metadata.name}-0` : String(e['value']);
    // The volumes, at local paths: the PVC and the config ConfigMap.
    const configFile = join(work, 'cdcflow.config.json');
    const configVolume = (pod['volumes'] as Json[]).find((v) => at(v, 'configMap') !== undefined) as Json;
    writeFileSync(configFile, configMap(at(configVolume, 'configMap', 'name'))['cdcflow.config.json'] as string);
    const port = await freePort();
    const local: Record<string, string> = {
      CDCFLOW_CONFIG: configFile,
      CDCFLOW_HOME: join(work, 'pvc'),
      CDCFLOW_STATE_DIR: join(work, 'pvc', 'state'),
      CDCFLOW_CHECKPOINT_DIR: join(work, 'pvc', 'checkpoints'),
      CDCFLOW_REST_PORT: String(port),
      CDCFLOW_JOB_NAME: jobName,
      KAFKA_BROKERS: kafkaBrokers,
      CDCFLOW_TOPIC: topic,
      CDCFLOW_PG_TABLE: table,
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
    };
    for (const key of Object.keys(local))
      if (key !== 'KAFKAJS_NO_PARTITIONER_WARNING') expect(env, `the manifest sets ${key}`).toHaveProperty(key);
    Object.assign(env, local);

    const feeder = new WorkloadFeeder(kafkaBrokers.split(','), topic, WORKLOAD);
    await feeder.open();
    await feeder.feed(1_500);

    // ENTRYPOINT ["cdcflow"] + args: the bin is runtime/cli/cdcflow.mjs (package.json).
    const job = JobProcess.start({ file: 'runtime/cli/cdcflow.mjs', args: container['args'] as string[], env });
    try {
      const base = `http://127.0.0.1:${port}`;
      const liveness = String(at(container, 'livenessProbe', 'httpGet', 'path'));
      const startup = String(at(container, 'startupProbe', 'httpGet', 'path'));
      const readiness = String(at(container, 'readinessProbe', 'httpGet', 'path'));
      expect(await until200(`${base}${startup}`, 60_000), job.tail(30)).toBe('200');
      expect(await until200(`${base}${liveness}`, 5_000)).toBe('200');
      await job.waitFor(/checkpoint \d+ committed: [1-9]\d* rows/, 60_000);
      expect(await until200(`${base}${readiness}`, 30_000), job.tail(30)).toBe('200');
      const scrape = await fetch(
        `${base}${String(at(sts, 'spec', 'template', 'metadata', 'annotations', 'prometheus.io/path'))}`,
      );
      expect(await scrape.text()).toContain('cdcflow_slo_ok');
      await feeder.feed(1_500);
      await feeder.close();

      const grace = Number(pod['terminationGracePeriodSeconds']);
      const sentAt = Date.now();
      process.kill(job.pid, 'SIGTERM');
      const exit = await job.waitForExit(grace * 1000);
      const stopMs = Date.now() - sentAt;
      expect(exit, job.tail(30)).toEqual({ code: 0, signal: null });
      const stopped = job.lines.map((l) => /job stopped at checkpoint (\d+)/.exec(l)).find((m) => m !== null);
      expect(stopped, job.tail(30)).toBeDefined();
      const finalId = Number((stopped as RegExpExecArray)[1]);
      const prepared = job.lines.filter((l) => l.includes(`checkpoint ${finalId} prepared`)).length;
      const committed = job.lines.filter((l) => l.includes(`checkpoint ${finalId} committed`)).length;
      expect(committed).toBe(prepared);
      const after = await readOrdersTable(databaseUrl, table, jobName);
      expect(after.prepared).toEqual([]);
      expect(after.rows.size).toBeGreaterThan(0);
      console.log(
        `[k8s pod contract] probes 200; SIGTERM → exit 0 in ${stopMs} ms (grace ${grace} s) at checkpoint ${finalId}; ${after.rows.size} rows`,
      );
      passed = true;
    } finally {
      if (job.running) process.kill(job.pid, 'SIGKILL');
    }
  }, 150_000);
});
