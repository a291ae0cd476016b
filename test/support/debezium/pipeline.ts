/**
 * The real pipeline of the end-to-end and chaos tests: a RealOrdersSource's topic → the projection
 * job (jobs/orders-to-postgres.ts: upsert → two-phase Postgres sink) in a child process → a sink
 * table; then reconcile compares the sink table with the source table itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import pg from 'pg';
import { formatReconcileReport, reconcileTables, type ReconcileReport } from '../../../runtime/reconcile/index.ts';
import { testEndpoints, uniqueName } from '../endpoints.ts';
import { JobProcess, type JobProcessOptions } from '../job-process.ts';
import { readMessagesUntil } from '../kafka-read.ts';
import type { RealOrdersSource } from './index.ts';

/** A row id no workload uses: written last, its arrival on the topic means the topic is complete. */
export const END_MARKER_ID = 1_999_999_999;

/** Writes the end marker and waits until the connector delivered it (every earlier commit is then on the topic). */
export async function awaitSourceCaughtUp(source: RealOrdersSource, timeoutMs = 90_000): Promise<KafkaMessage[]> {
  await source.query(
    `INSERT INTO ${pg.escapeIdentifier(source.table)} (id, status, amount, created_at, updated_at) VALUES ($1, 'end-marker', 0, now(), now())`,
    [END_MARKER_ID],
  );
  const kafka = new Kafka({
    clientId: 'end-marker',
    brokers: testEndpoints().kafkaBrokers.split(','),
    logLevel: logLevel.NOTHING,
  });
  return readMessagesUntil(kafka, source.topic, (m) => m.key?.toString() === `{"id":${END_MARKER_ID}}`, {
    timeoutMs,
    readUncommitted: true,
  });
}

/**
 * Change events delivered more than once (same key, change LSN, transaction and op): what a
 * connector restart re-sends from its last committed offset.
 */
export function redeliveredEvents(messages: readonly KafkaMessage[]): number {
  const seen = new Set<string>();
  let again = 0;
  for (const m of messages) {
    if (m.value === null) continue;
    const e = JSON.parse(m.value.toString()) as { op: string; source: { lsn: number; txId: number } };
    const id = `${m.key?.toString() ?? ''}|${e.source.lsn}|${e.source.txId}|${e.op}`;
    if (seen.has(id)) again += 1;
    else seen.add(id);
  }
  return again;
}

export class RealPipeline {
  readonly sinkTable: string;
  readonly jobName: string;
  readonly groupId: string;
  readonly workDir: string;
  readonly sinkUrl = testEndpoints().databaseUrl;

  constructor(
    readonly source: RealOrdersSource,
    label: string,
    private readonly echo?: (line: string) => void,
  ) {
    this.sinkTable = uniqueName(`sink_${label}`).replace(/[^a-z0-9]/g, '_');
    this.jobName = uniqueName(`real-${label}`);
    this.groupId = uniqueName(`real-${label}-group`);
    this.workDir = mkdtempSync(join(tmpdir(), `cdcflow-real-${label}-`));
  }

  /** What jobs/orders-to-postgres.ts reads. */
  job(extra: Readonly<Record<string, string>> = {}): JobProcessOptions {
    return {
      file: 'jobs/orders-to-postgres.ts',
      env: {
        KAFKA_BROKERS: testEndpoints().kafkaBrokers,
        DATABASE_URL: this.sinkUrl,
        CDCFLOW_TOPIC: this.source.topic,
        CDCFLOW_GROUP_ID: this.groupId,
        CDCFLOW_JOB_NAME: this.jobName,
        CDCFLOW_PG_TABLE: this.sinkTable,
        CDCFLOW_CHECKPOINT_DIR: join(this.workDir, 'checkpoints'),
        CDCFLOW_STATE_DIR: join(this.workDir, 'state'),
        CDCFLOW_SESSION_TIMEOUT_MS: '6000',
        KAFKAJS_NO_PARTITIONER_WARNING: '1',
        ...extra,
      },
      ...(this.echo === undefined ? {} : { onLine: this.echo }),
    };
  }

  /** One bounded run to the topic's current end (restoring the latest checkpoint if any); must exit 0. */
  async runBounded(timeoutMs = 120_000, extra: Readonly<Record<string, string>> = {}): Promise<JobProcess> {
    const run = JobProcess.start(this.job({ ...extra, CDCFLOW_BOUNDED: '1' }));
    const exit = await run.waitForExit(timeoutMs);
    if (exit.code !== 0 || exit.signal !== null)
      throw new Error(`the bounded projection run failed (${JSON.stringify(exit)})\n${run.tail(40)}`);
    return run;
  }

  async reconcile(): Promise<ReconcileReport> {
    return reconcileTables({
      source: { url: this.source.databaseUrl, table: this.source.table },
      sink: { url: this.sinkUrl, table: this.sinkTable },
      chunk: 2000,
      samples: 5,
    });
  }

  format(report: ReconcileReport): string {
    return formatReconcileReport(report);
  }

  /** Prepared transactions this job's sink left behind (none may remain after a clean end). */
  async preparedLeft(): Promise<string[]> {
    const db = new pg.Client({ connectionString: this.sinkUrl });
    await db.connect();
    try {
      return (
        await db.query<{ gid: string }>('select gid from pg_prepared_xacts where left(gid, length($1)) = $1', [
          `${this.jobName}:`,
        ])
      ).rows.map((r) => r.gid);
    } finally {
      await db.end();
    }
  }

  /** Drops the sink table and the sink's commit markers; the work folder only when the test passed. */
  async cleanup(passed: boolean): Promise<void> {
    const db = new pg.Client({ connectionString: this.sinkUrl });
    await db.connect();
    try {
      if (passed) await db.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(this.sinkTable)}`);
      await db
        .query("delete from cdcflow_sink_commits where sink like $1 || ':%'", [this.jobName])
        .catch(() => undefined);
    } finally {
      await db.end();
    }
    const admin = new Kafka({
      clientId: 'real-cleanup',
      brokers: testEndpoints().kafkaBrokers.split(','),
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    await admin.deleteGroups([this.groupId]).catch(() => undefined);
    await admin.disconnect();
    if (passed) rmSync(this.workDir, { recursive: true, force: true });
  }
}
