/**
 * The real pipeline under chaos: SQL on a real source table → Debezium (a Kafka Connect worker of
 * this test's own) → jobs/orders-to-postgres.ts (upsert → two-phase Postgres sink). While the SQL
 * workload runs, the job is SIGKILLed again and again (test/support/job-process.ts), and the
 * Connect worker is restarted twice mid-stream (once SIGKILLed, once stopped with SIGTERM): the
 * connector resumes from its last committed offset and re-sends what followed, duplicates the
 * job must absorb. At the end a bounded run drains the topic; reconcile must find the sink table
 * equal to the source table, and no prepared transaction may remain.
 *
 * Runs the configuration today's engine handles (REPLICA IDENTITY FULL, decimal string, no
 * TRUNCATE, connector registered before the writes); the defect configurations live in
 * test/integration/debezium-real-projection.test.ts.
 * CDCFLOW_CHAOS_KILLS (default 10), CDCFLOW_CHAOS_SEED, CDCFLOW_CHAOS_VERBOSE=1 as in the other chaos tests.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { RealOrdersSource, seedOrders, type SqlWorkload } from '../support/debezium/index.ts';
import { DedicatedConnect } from '../support/debezium/dedicated-connect.ts';
import { RealPipeline, awaitSourceCaughtUp, redeliveredEvents } from '../support/debezium/pipeline.ts';
import { ConnectClient } from '../../scripts/debezium/connect-client.ts';
import { killRepeatedly } from '../support/job-process.ts';
import { chaosSettings, countLines } from '../support/sink-chaos.ts';

const settings = chaosSettings();
const KILLS = settings.kills;
const SEEDED = 1000;
const COMMITTED = /checkpoint \d+ committed: \d+ rows/;
const RESTORING = /restoring from (checkpoint|savepoint) \d+/;
const ROLLED_BACK = /restore: rolled back (\d+) prepared/;
const RESTORE_COMMITTED = /restore: committed /;
const RESTORE_FOUND = /restore: found already committed /;
const say = (line: string) => console.log(`[chaos debezium-real] ${line}`);

let connect: DedicatedConnect | undefined;
let source: RealOrdersSource | undefined;
let pipeline: RealPipeline | undefined;
let load: SqlWorkload | undefined;
let passed = false;

afterAll(async () => {
  await load?.stop().catch(() => undefined);
  await pipeline?.cleanup(passed);
  await source?.cleanup();
  if (!passed && connect !== undefined) say(`Connect worker log kept: ${connect.logFile}`);
  await connect?.destroy(!passed);
});

describe('real Debezium → orders-to-postgres under SIGKILL and Connect restarts', () => {
  it(`reconciles equal after ${KILLS} job kills and 2 Connect worker restarts`, async () => {
    connect = await DedicatedConnect.create(say);
    await connect.start();
    source = await RealOrdersSource.create('chaos', { replicaIdentity: 'full', connectUrl: connect.url });
    pipeline = new RealPipeline(source, 'chaos', settings.echo);
    say(
      `seed ${settings.seed}, ${KILLS} kills, source ${source.table}, sink ${pipeline.sinkTable}, topic ${source.topic}, worker ${connect.url}`,
    );
    await seedOrders(source.databaseUrl, source.table, SEEDED, settings.seed);
    const names = await source.startConnector({ decimalHandling: 'string', partitions: 3 });
    load = source.workload({
      seed: settings.seed,
      seededRows: SEEDED,
      maxChanges: 60_000,
      maxDurationMs: 240_000,
      ratePerSecond: 600,
      bigTransactionRows: 5000,
      toastShare: 0.2,
    });
    const connectClient = new ConnectClient(connect.url);
    const worker = connect;
    const restartAt = new Map<number, NodeJS.Signals>([
      [Math.max(1, Math.round(KILLS / 3)), 'SIGKILL'],
      [Math.max(2, Math.round((2 * KILLS) / 3)), 'SIGTERM'],
    ]);
    const restarts: Promise<void>[] = [];
    // The worker restarts while the next job start runs, not between starts.
    const afterKill = (kill: number): Promise<void> => {
      const signal = restartAt.get(kill);
      if (signal !== undefined) {
        restarts.push(
          (async () => {
            const started = Date.now();
            await worker.kill(signal);
            await worker.start();
            await connectClient.waitRunning(names.connector, 120_000);
            say(`Connect worker restarted after ${signal} in ${Date.now() - started} ms; connector RUNNING again`);
          })(),
        );
      }
      return Promise.resolve();
    };
    const started = Date.now();
    const report = await killRepeatedly({
      job: pipeline.job(),
      kills: KILLS,
      seed: settings.seed,
      running: COMMITTED,
      restoring: RESTORING,
      afterKill,
      log: say,
    });
    await Promise.all(restarts);
    const written = await load.stop();
    say(
      `workload: ${written.changes} changed rows, ${written.committed} commits (${written.rolledBack} rolled back) in ${(written.durationMs / 1000).toFixed(1)} s`,
    );
    const messages = await awaitSourceCaughtUp(source, 120_000);
    const final = await pipeline.runBounded(180_000);
    const lines = [...report.processes, final].flatMap((p) => p.lines);
    say(
      `${KILLS} kills (${report.killsDuringRestore} during restore, ${report.restores} restores) in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
        `topic ${messages.length} messages, ${redeliveredEvents(messages)} redelivered by the connector; ` +
        `on restore: ${countLines(lines, RESTORE_COMMITTED)} recorded transactions committed, ${countLines(lines, RESTORE_FOUND)} found already committed, ${countLines(lines, ROLLED_BACK)} unrecorded ones rolled back`,
    );
    const result = await pipeline.reconcile();
    say(pipeline.format(result));
    expect(result.equal, pipeline.format(result)).toBe(true);
    expect(result.sourceRows).toBeGreaterThan(SEEDED);
    expect(await pipeline.preparedLeft()).toEqual([]);
    passed = true;
  });
});
