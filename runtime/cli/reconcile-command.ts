/**
 * `cdcflow reconcile`: is the sink table what the source table is? The comparison lives in
 * runtime/reconcile/; this command only parses flags and prints its report.
 * Exit code: 0 equal, 1 different, 2 could not compare.
 */
import { columnList, formatReconcileReport, reconcileTables } from '../reconcile/index.ts';
import type { CliContext } from './cli-context.ts';
import { CliError } from './cli-error.ts';

export interface ReconcileFlags {
  readonly source?: string;
  readonly sourceTable: string;
  readonly sink?: string;
  readonly sinkTable: string;
  readonly key?: string;
  readonly columns?: string;
  readonly ignore?: string;
  readonly sourceWhere?: string;
  readonly sinkWhere?: string;
  readonly chunk?: string;
  readonly samples?: string;
}

export async function reconcile(ctx: CliContext, f: ReconcileFlags): Promise<number> {
  const sourceUrl = f.source ?? process.env['CDCFLOW_SOURCE_DATABASE_URL'] ?? process.env['DATABASE_URL'];
  const sinkUrl = f.sink ?? sourceUrl;
  if (sourceUrl === undefined || sinkUrl === undefined)
    throw new CliError('reconcile needs --source <postgres url> (or CDCFLOW_SOURCE_DATABASE_URL / DATABASE_URL)', 2);
  const key = columnList(f.key);
  const columns = columnList(f.columns);
  const ignore = columnList(f.ignore);
  const report = await reconcileTables({
    source: { url: sourceUrl, table: f.sourceTable, ...(f.sourceWhere === undefined ? {} : { where: f.sourceWhere }) },
    sink: { url: sinkUrl, table: f.sinkTable, ...(f.sinkWhere === undefined ? {} : { where: f.sinkWhere }) },
    ...(key === undefined ? {} : { key }),
    ...(columns === undefined ? {} : { columns }),
    ...(ignore === undefined ? {} : { ignore }),
    ...(f.chunk === undefined ? {} : { chunk: Number(f.chunk) }),
    ...(f.samples === undefined ? {} : { samples: Number(f.samples) }),
  });
  ctx.output(report, () => formatReconcileReport(report).split('\n'));
  return report.equal ? 0 : 1;
}
