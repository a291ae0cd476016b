/**
 * reconcile: is the sink table what the source table is? Compares by primary key and every
 * column of the source (or those named), in key-ordered chunks, and reports rows missing from the
 * sink, extra in it, and differing, with a few samples. The oracle of the real-Debezium tests and
 * the tool to run after an incident. Each side is read in one read-only snapshot of its own
 * database; run it when the pipeline has caught up (a live source keeps moving: differences then
 * include changes not yet delivered).
 */
import { compareSorted, type ComparisonResult } from './compare.ts';
import { elasticsearchReader, redisReader, type SinkReader } from './document-sinks.ts';
import { ReconcileError } from './errors.ts';
import { commonKind, type ColumnKind } from './normalize.ts';
import { PostgresTable, redact } from './postgres-table.ts';

/** Where the sink's rows are: a Postgres table, an Elasticsearch index, or Redis keys `<prefix>:<key>` holding JSON. */
export type ReconcileSink =
  | { readonly kind?: 'postgres'; readonly url: string; readonly table: string; readonly where?: string }
  | { readonly kind: 'elasticsearch'; readonly url: string; readonly index: string }
  | { readonly kind: 'redis'; readonly url: string; readonly prefix: string };

export interface ReconcileOptions {
  readonly source: { readonly url: string; readonly table: string; readonly where?: string };
  readonly sink: ReconcileSink;
  /** Key columns. @default the source table's primary key */
  readonly key?: readonly string[];
  /** Columns to compare. @default every source column but the key */
  readonly columns?: readonly string[];
  /** Columns left out of the comparison (e.g. a sink's bookkeeping). */
  readonly ignore?: readonly string[];
  /** Rows per query. @default 5000 */
  readonly chunk?: number;
  /** Samples kept per category. @default 5 */
  readonly samples?: number;
}

export interface ReconcileReport extends ComparisonResult {
  readonly source: string;
  readonly sink: string;
  readonly key: readonly string[];
  readonly columns: readonly string[];
  /** Source columns the sink does not hold (an index mapping with fewer fields), left out. */
  readonly notInSink: readonly string[];
  readonly equal: boolean;
  readonly durationMs: number;
}

export async function reconcileTables(o: ReconcileOptions): Promise<ReconcileReport> {
  if (o.sink.kind === 'elasticsearch') return reconcileWithReader(o, elasticsearchReader(o.sink.url, o.sink.index));
  if (o.sink.kind === 'redis') return reconcileWithReader(o, redisReader(o.sink.url, o.sink.prefix));
  const sinkTarget = o.sink;
  const started = Date.now();
  const source = await PostgresTable.open(o.source.url, o.source.table, o.source.where);
  let sink: PostgresTable | undefined;
  try {
    sink = await PostgresTable.open(sinkTarget.url, sinkTarget.table, sinkTarget.where);
    const key = o.key ?? source.primaryKey;
    if (key.length === 0)
      throw new ReconcileError(`reconcile: ${o.source.table} has no primary key; name the key columns (--key)`);
    const ignore = new Set([...(o.ignore ?? []), ...key]);
    const columns = o.columns ?? source.columns.map((c) => c.name).filter((c) => !ignore.has(c));
    const missing = [...key, ...columns].filter((c) => source.column(c) === undefined || sink?.column(c) === undefined);
    if (missing.length > 0) {
      const where = missing.map((c) => `${c} (${source.column(c) === undefined ? 'source' : 'sink'})`).join(', ');
      throw new ReconcileError(
        `reconcile: column(s) missing: ${where}; leave them out with --ignore or name the columns to compare`,
      );
    }
    const kindOf = (c: string): ColumnKind =>
      commonKind((source.column(c) as { kind: ColumnKind }).kind, (sink?.column(c) as { kind: ColumnKind }).kind);
    // Integer order only when both sides store integers; otherwise both sort the key's text.
    const keyKinds = key.map((c): ColumnKind =>
      source.column(c)?.kind === 'integer' && sink?.column(c)?.kind === 'integer' ? 'integer' : 'text',
    );
    return await compareAndReport(
      o,
      { key, keyKinds, columns, columnKinds: columns.map(kindOf), notInSink: [] },
      source,
      sink,
      `${redact(sinkTarget.url)} ${sinkTarget.table}`,
      started,
    );
  } finally {
    await source.close();
    await sink?.close();
  }
}

/** The source table against a sink that is not Postgres (Elasticsearch, Redis). */
async function reconcileWithReader(o: ReconcileOptions, reader: SinkReader): Promise<ReconcileReport> {
  const started = Date.now();
  const source = await PostgresTable.open(o.source.url, o.source.table, o.source.where);
  try {
    const key = o.key ?? source.primaryKey;
    if (key.length === 0)
      throw new ReconcileError(`reconcile: ${o.source.table} has no primary key; name the key columns (--key)`);
    const sinkKinds = await reader.columnKinds();
    const ignore = new Set([...(o.ignore ?? []), ...key]);
    const wanted = o.columns ?? source.columns.map((c) => c.name).filter((c) => !ignore.has(c));
    const absentInSource = [...key, ...wanted].filter((c) => source.column(c) === undefined);
    if (absentInSource.length > 0)
      throw new ReconcileError(`reconcile: column(s) missing in the source: ${absentInSource.join(', ')}`);
    // A sink with a schema (an index mapping) may hold fewer fields: compare those it holds, say which were left out.
    const notInSink = sinkKinds === undefined ? [] : wanted.filter((c) => !sinkKinds.has(c));
    if (o.columns !== undefined && notInSink.length > 0)
      throw new ReconcileError(`reconcile: column(s) missing in the sink: ${notInSink.join(', ')}`);
    const columns = wanted.filter((c) => !notInSink.includes(c));
    const sourceKind = (c: string): ColumnKind => (source.column(c) as { kind: ColumnKind }).kind;
    const kindOf = (c: string): ColumnKind => commonKind(sourceKind(c), sinkKinds?.get(c) ?? 'text');
    const keyKinds = key.map((c): ColumnKind =>
      sourceKind(c) === 'integer' && (sinkKinds === undefined || sinkKinds.get(c) === 'integer') ? 'integer' : 'text',
    );
    return await compareAndReport(
      o,
      { key, keyKinds, columns, columnKinds: columns.map(kindOf), notInSink },
      source,
      reader,
      reader.description,
      started,
    );
  } finally {
    await source.close();
    await reader.close();
  }
}

/** What both sides are compared on, decided from the two schemas. */
interface ComparePlan {
  readonly key: readonly string[];
  readonly keyKinds: readonly ColumnKind[];
  readonly columns: readonly string[];
  readonly columnKinds: readonly ColumnKind[];
  readonly notInSink: readonly string[];
}

/** Reads both sides in key order, chunk by chunk, and turns the comparison into the report. */
async function compareAndReport(
  o: ReconcileOptions,
  plan: ComparePlan,
  source: Pick<SinkReader, 'rows'>,
  sink: Pick<SinkReader, 'rows'>,
  sinkDescription: string,
  started: number,
): Promise<ReconcileReport> {
  const chunk = o.chunk ?? 5000;
  if (!Number.isInteger(chunk) || chunk < 1)
    throw new ReconcileError(`reconcile: chunk must be a positive integer, got ${chunk}`);
  const { key, keyKinds, columns } = plan;
  const result = await compareSorted(
    source.rows(key, keyKinds, columns, chunk),
    sink.rows(key, keyKinds, columns, chunk),
    {
      keyKinds,
      columns,
      columnKinds: plan.columnKinds,
      ...(o.samples === undefined ? {} : { samples: o.samples }),
    },
  );
  return {
    ...result,
    source: `${redact(o.source.url)} ${o.source.table}`,
    sink: sinkDescription,
    key,
    columns,
    notInSink: plan.notInSink,
    equal: result.missing === 0 && result.extra === 0 && result.differing === 0,
    durationMs: Date.now() - started,
  };
}

/** The report as on-call reads it: the verdict first, counts, then samples. */
export function formatReconcileReport(r: ReconcileReport): string {
  const lines = [
    r.equal
      ? `EQUAL: ${r.sourceRows} rows, every column (${r.columns.length}) equal by key (${r.key.join(', ')})`
      : `DIFFERENT: ${r.missing} missing from the sink, ${r.extra} extra in the sink, ${r.differing} differing`,
    `  source ${r.source}: ${r.sourceRows} rows`,
    `  sink   ${r.sink}: ${r.sinkRows} rows`,
    `  matching ${r.matching}, compared in ${(r.durationMs / 1000).toFixed(1)} s`,
  ];
  if (r.notInSink.length > 0) lines.push(`  not compared (absent from the sink's mapping): ${r.notInSink.join(', ')}`);
  const key = (k: readonly string[]) => `(${k.join(', ')})`;
  if (r.samples.missing.length > 0) lines.push(`  missing, e.g. ${r.samples.missing.map(key).join(' ')}`);
  if (r.samples.extra.length > 0) lines.push(`  extra, e.g. ${r.samples.extra.map(key).join(' ')}`);
  const byColumn = Object.entries(r.differingByColumn);
  if (byColumn.length > 0) lines.push(`  differing by column: ${byColumn.map(([c, n]) => `${c} ${n}`).join(', ')}`);
  for (const d of r.samples.differing) {
    lines.push(
      `  differs ${key(d.key)}: ${d.columns.map((c) => `${c.column} source=${clip(c.source)} sink=${clip(c.sink)}`).join('; ')}`,
    );
  }
  return lines.join('\n');
}

function clip(value: string | null): string {
  if (value === null) return 'NULL';
  return value.length > 60 ? `${JSON.stringify(value.slice(0, 57))}… (${value.length} chars)` : JSON.stringify(value);
}
