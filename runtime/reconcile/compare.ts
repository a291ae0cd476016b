/**
 * The merge join at the heart of reconcile: two streams of rows, each sorted by the key, walked
 * side by side; only the current row of each side is held (plus the few samples kept), so memory
 * stays bounded whatever the table size.
 */
import { compareKeys, normalizeValue, type ColumnKind } from './normalize.ts';

/** One row as read: the key's values and the compared columns' values (Postgres text output). */
export interface ReconcileRow {
  readonly key: readonly string[];
  readonly values: readonly (string | null)[];
}

export interface ColumnDifference {
  readonly column: string;
  readonly source: string | null;
  readonly sink: string | null;
}

export interface DifferingRow {
  readonly key: readonly string[];
  readonly columns: readonly ColumnDifference[];
}

export interface ComparisonResult {
  readonly sourceRows: number;
  readonly sinkRows: number;
  readonly matching: number;
  /** In the source, not in the sink. */
  readonly missing: number;
  /** In the sink, not in the source. */
  readonly extra: number;
  readonly differing: number;
  /** Rows differing per column, to see at a glance which column drifts. */
  readonly differingByColumn: Readonly<Record<string, number>>;
  readonly samples: {
    readonly missing: readonly (readonly string[])[];
    readonly extra: readonly (readonly string[])[];
    readonly differing: readonly DifferingRow[];
  };
}

export interface ComparisonSpec {
  readonly keyKinds: readonly ColumnKind[];
  readonly columns: readonly string[];
  /** The kind each column is compared in (commonKind of both sides' types). */
  readonly columnKinds: readonly ColumnKind[];
  /** Samples kept per category. @default 5 */
  readonly samples?: number;
}

/** Compares two key-ordered row streams. Throws if a stream is not strictly ordered by key (a reader bug). */
export async function compareSorted(
  source: AsyncIterable<ReconcileRow>,
  sink: AsyncIterable<ReconcileRow>,
  spec: ComparisonSpec,
): Promise<ComparisonResult> {
  const limit = spec.samples ?? 5;
  const a = orderedIterator(source, spec.keyKinds, 'source');
  const b = orderedIterator(sink, spec.keyKinds, 'sink');
  let sourceRows = 0;
  let sinkRows = 0;
  let matching = 0;
  let differing = 0;
  const differingByColumn: Record<string, number> = {};
  const missing: (readonly string[])[] = [];
  const extra: (readonly string[])[] = [];
  const differingSamples: DifferingRow[] = [];
  let missingCount = 0;
  let extraCount = 0;
  let x = await a.next();
  let y = await b.next();
  while (!x.done || !y.done) {
    const order = x.done ? 1 : y.done ? -1 : compareKeys(x.value.key, y.value.key, spec.keyKinds);
    if (order < 0 && !x.done) {
      sourceRows += 1;
      missingCount += 1;
      if (missing.length < limit) missing.push(x.value.key);
      x = await a.next();
    } else if (order > 0 && !y.done) {
      sinkRows += 1;
      extraCount += 1;
      if (extra.length < limit) extra.push(y.value.key);
      y = await b.next();
    } else if (!x.done && !y.done) {
      sourceRows += 1;
      sinkRows += 1;
      const columns = diffRow(x.value, y.value, spec);
      if (columns.length === 0) matching += 1;
      else {
        differing += 1;
        for (const c of columns) differingByColumn[c.column] = (differingByColumn[c.column] ?? 0) + 1;
        if (differingSamples.length < limit) differingSamples.push({ key: x.value.key, columns });
      }
      x = await a.next();
      y = await b.next();
    }
  }
  return {
    sourceRows,
    sinkRows,
    matching,
    missing: missingCount,
    extra: extraCount,
    differing,
    differingByColumn,
    samples: { missing, extra, differing: differingSamples },
  };
}

/** The columns whose normalised values differ. */
export function diffRow(
  source: ReconcileRow,
  sink: ReconcileRow,
  spec: Pick<ComparisonSpec, 'columns' | 'columnKinds'>,
): ColumnDifference[] {
  const out: ColumnDifference[] = [];
  spec.columns.forEach((column, i) => {
    const kind = spec.columnKinds[i] as ColumnKind;
    const s = source.values[i] ?? null;
    const t = sink.values[i] ?? null;
    if (normalizeValue(s, kind) !== normalizeValue(t, kind)) out.push({ column, source: s, sink: t });
  });
  return out;
}

async function* orderedIterator(
  rows: AsyncIterable<ReconcileRow>,
  kinds: readonly ColumnKind[],
  side: string,
): AsyncGenerator<ReconcileRow> {
  let previous: ReconcileRow | undefined;
  for await (const row of rows) {
    if (previous !== undefined && compareKeys(previous.key, row.key, kinds) >= 0) {
      throw new Error(
        `reconcile: ${side} rows are not strictly ordered by key (${previous.key.join(',')} then ${row.key.join(',')}); is the key unique?`,
      );
    }
    previous = row;
    yield row;
  }
}
