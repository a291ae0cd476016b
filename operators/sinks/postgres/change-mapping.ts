/** Turns sink input (a `TableChange`, or a plain record through `toChange`) into a keyed change. */
import { originOfValue } from '../../record-dead-letters.ts';
import type { TableChange } from '../../table-change.ts';
import type { PostgresChange } from './postgres-options.ts';
import { PostgresSinkError } from './pg-session.ts';
import type { KeyedChange } from './table-writer.ts';

type Row = Readonly<Record<string, unknown>>;
type RowChange =
  | (Omit<Extract<PostgresChange, { kind: 'upsert' }>, 'row'> & { readonly row: Row })
  | (Omit<Extract<PostgresChange, { kind: 'delete' }>, 'key' | 'previous'> & {
      readonly key: Row;
      readonly previous?: Row | null;
    });

export function changeMapper<T>(
  primaryKey: readonly string[],
  toChange: ((value: T) => PostgresChange) | undefined,
  columns: readonly string[] | undefined,
): (value: T) => KeyedChange {
  const keep = columns === undefined ? undefined : new Set([...primaryKey, ...columns]);
  const restrict = (row: Row): Row =>
    keep === undefined ? row : Object.fromEntries(Object.entries(row).filter(([c]) => keep.has(c)));
  return (value) => {
    // PostgresChange accepts any object type (interfaces have no index signature); columns are its own fields.
    const change = (
      toChange === undefined ? fromTableChange(value as TableChange<unknown, Row>, primaryKey) : toChange(value)
    ) as RowChange;
    const position = change.position;
    const sourceTsMs = change.sourceTsMs;
    // Carried for dead letters: where the change was read, when the value says (table changes do).
    const origin = originOfValue(value);
    const at = origin === undefined ? {} : { origin };
    if (change.kind === 'upsert') {
      return {
        kind: 'upsert',
        keyId: keyIdOf(change.row, primaryKey),
        row: restrict(change.row),
        position,
        sourceTsMs,
        ...at,
      };
    }
    const previous = change.previous === undefined || change.previous === null ? null : restrict(change.previous);
    return {
      kind: 'delete',
      keyId: keyIdOf(change.key, primaryKey),
      key: change.key,
      previous,
      position,
      sourceTsMs,
      ...at,
    };
  };
}

function fromTableChange(change: TableChange<unknown, Row>, primaryKey: readonly string[]): PostgresChange {
  if (change === null || typeof change !== 'object' || (change.kind !== 'upsert' && change.kind !== 'delete')) {
    throw new PostgresSinkError(
      'postgresSink: the input is not a TableChange; pass toChange to map plain records',
      undefined,
      { domain: 'user', retriable: false },
    );
  }
  const { position, sourceTsMs } = change;
  if (change.kind === 'upsert') {
    const complete = primaryKey.every((c) => change.row[c] !== undefined);
    return {
      kind: 'upsert',
      row: complete ? change.row : { ...keyColumns(change.key, primaryKey, null), ...change.row },
      position,
      sourceTsMs,
    };
  }
  return {
    kind: 'delete',
    key: keyColumns(change.key, primaryKey, change.previous),
    previous: change.previous,
    position,
    sourceTsMs,
  };
}

/** The key as columns: an object key gives its fields, a scalar key the single key column. */
function keyColumns(key: unknown, primaryKey: readonly string[], previous: Row | null): Row {
  if (key !== null && typeof key === 'object' && !Array.isArray(key)) return pick(key as Row, primaryKey);
  if (primaryKey.length === 1 && key !== undefined && key !== null) return { [primaryKey[0] as string]: key };
  if (previous !== null) return pick(previous, primaryKey);
  throw new PostgresSinkError(
    `postgresSink: cannot map key ${JSON.stringify(key)} onto primary key (${primaryKey.join(', ')}); pass toChange`,
    undefined,
    { domain: 'user', retriable: false },
  );
}

function pick(row: Row, columns: readonly string[]): Row {
  return Object.fromEntries(columns.map((c) => [c, row[c]]));
}

/** Identifies a primary key in buffers: JSON of its values in key order. */
function keyIdOf(source: Row, primaryKey: readonly string[]): string {
  const values = primaryKey.map((c) => source[c]);
  if (values.some((v) => v === undefined || v === null)) {
    throw new PostgresSinkError(
      `postgresSink: a change has no value for key column(s) ${primaryKey.filter((c) => source[c] == null).join(', ')}`,
      undefined,
      { domain: 'user', retriable: false },
    );
  }
  return JSON.stringify(values, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}
