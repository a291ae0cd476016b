/**
 * End to end on real Debezium output: SQL on a real source table → Debezium's Postgres connector
 * (Kafka Connect) → jobs/orders-to-postgres.ts (upsert → two-phase Postgres sink) → reconcile
 * compares the sink table with the source table, every row and column.
 *
 * The workload (scripts/debezium/sql-workload.ts) mixes inserts, updates, deletes, multi-row and
 * rolled-back transactions, one 5,000-row transaction, primary-key changes, TOASTed notes,
 * negative NUMERIC amounts and concurrent interleaved transactions.
 *
 * The first test is the reference configuration (REPLICA IDENTITY FULL, decimal.handling.mode=string,
 * no TRUNCATE, connector started before the writes); the others pin the defects of issue 9. The
 * TOAST cases under REPLICA IDENTITY DEFAULT stay skipped (CDCFLOW_REAL_DEBEZIUM_DEFECTS=1 runs
 * them): rows whose primary key changed with a TOASTed column untouched go to the upsert's
 * unresolved side output instead of the sink (docs/real-debezium-testing.md).
 */
import { describe, expect, it } from 'vitest';
import { RealOrdersSource, seedOrders, type DecimalHandling, type ReplicaIdentity } from '../support/debezium/index.ts';
import { RealPipeline, awaitSourceCaughtUp } from '../support/debezium/pipeline.ts';

const SEEDED = 500;
const known = process.env['CDCFLOW_REAL_DEBEZIUM_DEFECTS'] === '1' ? it : it.skip;
const verbose = process.env['CDCFLOW_CHAOS_VERBOSE'] === '1';

interface Scenario {
  readonly label: string;
  readonly replicaIdentity: ReplicaIdentity;
  readonly decimalHandling: DecimalHandling;
  readonly truncate: boolean;
  /** Register the connector 0.5 s after the writes began: its snapshot runs under load. */
  readonly connectorDuringWrites: boolean;
  readonly seed: number;
  readonly maxChanges?: number;
}

async function runScenario(s: Scenario): Promise<void> {
  const say = (line: string) => console.log(`[real ${s.label}] ${line}`);
  const source = await RealOrdersSource.create(s.label, { replicaIdentity: s.replicaIdentity });
  const pipeline = new RealPipeline(source, s.label, verbose ? (line) => console.log(`  | ${line}`) : undefined);
  let passed = false;
  try {
    await seedOrders(source.databaseUrl, source.table, SEEDED, s.seed);
    // Debezium skips TRUNCATE by default (skipped.operations=t): the truncate scenarios ask for it.
    const connector = {
      decimalHandling: s.decimalHandling,
      partitions: 3,
      ...(s.truncate ? { extra: { 'skipped.operations': 'none' } } : {}),
    };
    if (!s.connectorDuringWrites) await source.startConnector(connector);
    const load = source.workload({
      seed: s.seed,
      seededRows: SEEDED,
      maxChanges: s.maxChanges ?? 12_000,
      maxDurationMs: 30_000,
      ratePerSecond: 2000,
      bigTransactionRows: 5000,
      truncate: s.truncate,
      toastShare: 0.2,
    });
    if (s.connectorDuringWrites) {
      await new Promise((resolve) => setTimeout(resolve, 800));
      await source.startConnector(connector);
      // Stop soon after the snapshot: a change the LSN guard dropped at the snapshot switch shows
      // as a stale row only while its key is not changed again (later changes would hide it).
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await load.stop();
    }
    const written = await load.done;
    say(
      `workload: ${written.changes} changed rows in ${written.committed} commits (${written.rolledBack} rolled back), ${JSON.stringify(written.byKind)}`,
    );
    await awaitSourceCaughtUp(source);
    // The job is told what the connector does: its decimal.handling.mode, and that a TRUNCATE must empty the sink.
    await pipeline.runBounded(120_000, {
      CDCFLOW_DECIMAL_HANDLING: s.decimalHandling,
      ...(s.truncate ? { CDCFLOW_TRUNCATE: 'propagate' } : {}),
    });
    const report = await pipeline.reconcile();
    say(pipeline.format(report));
    expect(report.equal, pipeline.format(report)).toBe(true);
    expect(await pipeline.preparedLeft()).toEqual([]);
    passed = true;
  } finally {
    await pipeline.cleanup(passed);
    await source.cleanup();
  }
}

describe('real Debezium → upsert → Postgres two-phase: sink equals source', () => {
  it('REPLICA IDENTITY FULL, decimal string, connector before the writes (what the engine handles today)', async () => {
    await runScenario({
      label: 'green',
      replicaIdentity: 'full',
      decimalHandling: 'string',
      truncate: false,
      connectorDuringWrites: false,
      seed: 901,
    });
  });

  // Defect 1, commit order — enabled by branch `commit-order`: changes committed after the
  // snapshot began can carry change LSNs at or below the snapshot rows' LSN; the LSN-guarded
  // upsert drops them as duplicates (stale rows, deleted rows that survive).
  it('commit order: connector started while writes run (snapshot under load) [branch commit-order]', async () => {
    await runScenario({
      label: 'snapshot-load',
      replicaIdentity: 'full',
      decimalHandling: 'string',
      truncate: false,
      connectorDuringWrites: true,
      seed: 902,
    });
  });

  // Defect 2, TOAST — with REPLICA IDENTITY DEFAULT an update that leaves notes alone carries
  // __debezium_unavailable_value. Branch `commit-order` fills it from state (no placeholder reaches
  // the sink: 0 differing rows), but the insert half of a primary-key change of a TOASTed row has no
  // stored row to take notes from: it goes to the upsert's UNRESOLVED_CHANGES side output
  // (docs/commit-order.md), so this whole-table comparison still misses those rows (20 of 1,400 in
  // a run). Pinned instead by test/integration/real-debezium-commit-order.test.ts, which asserts that
  // outcome exactly. Stays skipped until primary-key changes carry the row across keys.
  known('TOAST: REPLICA IDENTITY DEFAULT keeps unchanged large notes [branch commit-order]', async () => {
    await runScenario({
      label: 'toast',
      replicaIdentity: 'default',
      decimalHandling: 'string',
      truncate: false,
      connectorDuringWrites: false,
      seed: 903,
    });
  });

  // Defect 3, decimals — enabled by branch `debezium-values`: decimal.handling.mode=precise
  // (Debezium's default) sends NUMERIC as base64 of the unscaled bytes.
  it('decimals: decimal.handling.mode=precise, negative amounts included [branch debezium-values]', async () => {
    await runScenario({
      label: 'precise',
      replicaIdentity: 'full',
      decimalHandling: 'precise',
      truncate: false,
      connectorDuringWrites: false,
      seed: 904,
    });
  });

  // Defect 4, TRUNCATE — enabled by branch `debezium-values`: op "t" is ignored, the sink keeps every row.
  it('TRUNCATE mid-stream empties the sink too [branch debezium-values]', async () => {
    await runScenario({
      label: 'truncate',
      replicaIdentity: 'full',
      decimalHandling: 'string',
      truncate: true,
      connectorDuringWrites: false,
      seed: 905,
    });
  });

  // Everything at once, as a user's first real deployment meets it — needs both branches.
  known(
    'full mix: DEFAULT identity, precise decimals, TRUNCATE, connector started under load [branches commit-order + debezium-values]',
    async () => {
      await runScenario({
        label: 'full-mix',
        replicaIdentity: 'default',
        decimalHandling: 'precise',
        truncate: true,
        connectorDuringWrites: true,
        seed: 906,
      });
    },
  );
});
