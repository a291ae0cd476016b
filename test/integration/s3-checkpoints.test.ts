/**
 * The projection job with its checkpoints in a real S3-compatible store (S3Proxy in the stack):
 * SIGKILLed mid-run, restarted on an EMPTY staging folder (another machine, as far as local disk
 * goes), it restores from the bucket and reads to the end; retention leaves no unreferenced state
 * object behind. Skips when CDCFLOW_S3_ENDPOINT is unset.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { S3ObjectStore } from '../../checkpoints/s3-object-store.ts';
import { s3ConnectionFromEnv } from '../../checkpoints/s3-location.ts';
import { S3CheckpointStorage } from '../../checkpoints/s3-storage.ts';
import { generateWorkload } from '../../scripts/workload/generator.ts';
import { projectionOracle, type OracleRecord } from '../../scripts/workload/oracle.ts';
import type { OrderRow } from '../../scripts/workload/orders-model.ts';
import { loadUpsertState } from '../support/checkpoint-state.ts';
import { WORKLOAD_PRESETS, type WorkloadOptions } from '../../scripts/workload/workload-options.ts';
import { testEndpoints, uniqueName } from '../support/endpoints.ts';
import { JobProcess } from '../support/job-process.ts';
import { WorkloadFeeder } from '../support/workload-feeder.ts';

const endpoint = process.env['CDCFLOW_S3_ENDPOINT'];
const bucket = process.env['CDCFLOW_S3_BUCKET'] ?? 'cdcflow';
const WORKLOAD: WorkloadOptions = { ...WORKLOAD_PRESETS.S, keys: 1000, events: 4000, seed: 20_261_204 };
const workDir = mkdtempSync(join(tmpdir(), 'cdcflow-s3-'));
const prefix = uniqueName('it-s3');
const brokers = testEndpoints().kafkaBrokers.split(',');

afterAll(async () => {
  rmSync(workDir, { recursive: true, force: true });
  if (endpoint === undefined) return;
  const store = new S3ObjectStore(bucket, s3ConnectionFromEnv());
  await store.delete(await store.list(`${prefix}/`)).catch(() => undefined);
  await store.destroy();
});

it.skipIf(endpoint === undefined)(
  'a job checkpoints into S3, survives SIGKILL, restores from the bucket on an empty staging folder (skipped without CDCFLOW_S3_ENDPOINT)',
  async () => {
    const topic = uniqueName('s3-orders');
    const root = `s3://${bucket}/${prefix}`;
    const feeder = new WorkloadFeeder(brokers, topic, WORKLOAD);
    await feeder.open();
    await feeder.feed(10_000);
    await feeder.close();
    const env = (staging: string, bounded: boolean) => ({
      KAFKA_BROKERS: brokers.join(','),
      CDCFLOW_TOPIC: topic,
      CDCFLOW_GROUP_ID: uniqueName('s3-projection'),
      CDCFLOW_CHECKPOINT_DIR: root,
      CDCFLOW_CHECKPOINT_STAGING_DIR: join(workDir, staging),
      CDCFLOW_STATE_DIR: join(workDir, `${staging}-state`),
      ...(bounded ? { CDCFLOW_BOUNDED: '1' } : {}),
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
    });

    const first = JobProcess.start({ file: 'jobs/orders-projection.ts', env: env('a', false) });
    try {
      await first.waitFor(/checkpoint \d+ complete/, 60_000);
      const from = first.lines.length;
      await first.waitFor(/checkpoint \d+ complete/, 30_000, from);
    } finally {
      await first.kill();
    }

    const second = JobProcess.start({ file: 'jobs/orders-projection.ts', env: env('b', true) });
    try {
      const restored = await second.waitFor(/restoring from checkpoint (\d+) \((s3:\/\/[^)]+)\)/, 60_000);
      expect(restored[2]).toContain(`${root}/orders-projection/chk-`);
      await second.waitFor(/finished: \d+ table changes/, 90_000);
      expect((await second.waitForExit(30_000)).code).toBe(0);
    } finally {
      await second.kill();
    }

    // Exactly the oracle: the final savepoint (in the bucket) holds the projection of every record.
    const reader = new S3CheckpointStorage({
      url: root,
      jobName: 'orders-projection',
      stagingDirectory: join(workDir, 'verify'),
    });
    const final = await loadUpsertState<OrderRow>({
      checkpointDir: workDir,
      jobName: 'orders-projection',
      operatorUid: 'orders-upsert',
      storage: reader,
    });
    const records: OracleRecord[] = [...generateWorkload(WORKLOAD)].map(({ seq, partition, id, event }) => ({
      seq,
      partition,
      id,
      event,
    }));
    const oracle = projectionOracle(records);
    const live = new Map([...final.entries].filter(([, e]) => e.row !== null).map(([k, e]) => [k, e.row]));
    expect(live.size).toBe(oracle.size);
    for (const [id, row] of oracle) expect(live.get(id), `id ${id}`).toEqual(row);

    // Retention: keep one checkpoint; every state object left is referenced by what is kept.
    const storage = new S3CheckpointStorage({
      url: root,
      jobName: 'orders-projection',
      stagingDirectory: join(workDir, 'c'),
    });
    await storage.retain(1);
    const { checkpoints, savepoints } = await storage.list();
    const referenced = new Set(
      [...checkpoints, ...savepoints]
        .filter((s) => s.metadata.fileBase === 'job-directory')
        .flatMap((s) => s.metadata.sharedFiles),
    );
    const store = new S3ObjectStore(bucket, s3ConnectionFromEnv());
    const shared = (await store.list(`${prefix}/orders-projection/shared/`)).map((k) =>
      k.slice(`${prefix}/orders-projection/`.length),
    );
    await store.destroy();
    expect(shared.filter((p) => !referenced.has(p))).toEqual([]);
    expect(checkpoints.length).toBeLessThanOrEqual(1);
  },
);
