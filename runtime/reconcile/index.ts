export {
  compareSorted,
  diffRow,
  type ColumnDifference,
  type ComparisonResult,
  type ComparisonSpec,
  type DifferingRow,
  type ReconcileRow,
} from './compare.ts';
export { columnList } from './column-list.ts';
export { ReconcileError } from './errors.ts';
export {
  canonicalDecimal,
  canonicalTimestamp,
  commonKind,
  compareKeys,
  kindOfType,
  normalizeValue,
  type ColumnKind,
} from './normalize.ts';
export { PostgresTable, quoteTable } from './postgres-table.ts';
export { elasticsearchReader, jsonCell, redisReader, type SinkReader } from './document-sinks.ts';
export {
  formatReconcileReport,
  reconcileTables,
  type ReconcileOptions,
  type ReconcileReport,
  type ReconcileSink,
} from './reconcile.ts';
