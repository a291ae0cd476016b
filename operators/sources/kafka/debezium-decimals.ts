/**
 * NUMERIC/DECIMAL columns of Debezium change events → exact decimal strings (`"-26588.24"`), for
 * every `decimal.handling.mode`:
 * - `precise` (the connector's default): base64 of the big-endian two's-complement unscaled bytes.
 *   The scale is not in the value: it comes from the Connect schema (`schemas.enable=true`:
 *   `org.apache.kafka.connect.data.Decimal` with its `scale` parameter), from the Avro `decimal`
 *   logical type, or — schemas disabled — from `columns` here. A NUMERIC without a declared scale
 *   arrives as `io.debezium.data.VariableScaleDecimal` (`{scale, value}`), which is self-describing.
 * - `string`: already decimal text; checked.
 * - `double`: a JSON number (already rounded by the connector); turned into decimal text.
 *
 * A value whose decoding is uncertain (bytes with no known scale, text that is not a decimal, a
 * value of the wrong type) is never passed on: the record is dead-lettered with a reason naming
 * the column and what to configure.
 */
import { CdcflowError } from '../../../state/errors.ts';
import {
  decimalFromDouble,
  formatUnscaled,
  isDecimalText,
  unscaledFromBase64,
  unscaledFromBytes,
} from './decimal-bytes.ts';
import { isPlainObject } from './debezium-envelope.ts';

/** The connector's `decimal.handling.mode`. */
export type DecimalHandling = 'precise' | 'string' | 'double';

/** Decimal settings of a Debezium source; only needed when the connector's converter has schemas disabled. */
export interface DebeziumDecimalOptions {
  /**
   * The connector's `decimal.handling.mode`; tells how the `columns` below are encoded when the
   * messages carry no schema. With schemas enabled the schema decides. @default 'precise'
   */
  readonly handling?: DecimalHandling;
  /**
   * The scale (fraction digits) of each NUMERIC/DECIMAL column, keyed `column`, `table.column` or
   * `schema.table.column` (the most specific wins), e.g. `{ 'public.orders.amount': 2 }`. Needed
   * for `precise` without schemas (the bytes do not carry the scale); with `string`/`double` it
   * marks the columns to check/convert (and the scale `double` values are fixed to).
   */
  readonly columns?: Readonly<Record<string, number>>;
}

export const DECIMAL_HANDLINGS: readonly DecimalHandling[] = ['precise', 'string', 'double'];

/** A source's decimal settings are invalid; the message says which and how to fix them. */
export class DecimalConfigError extends CdcflowError {
  constructor(message: string) {
    super(message, { domain: 'user' });
  }
}

/** Throws {@link DecimalConfigError} for settings that cannot be right; call when the job is built. */
export function validateDecimalOptions(options: DebeziumDecimalOptions): void {
  if (options.handling !== undefined && !DECIMAL_HANDLINGS.includes(options.handling)) {
    throw new DecimalConfigError(
      `decimals.handling must be one of ${DECIMAL_HANDLINGS.join(', ')} (the connector's decimal.handling.mode), got ${JSON.stringify(options.handling)}`,
    );
  }
  for (const [name, scale] of Object.entries(options.columns ?? {})) {
    const parts = name.split('.');
    if (parts.length > 3 || parts.some((p) => p.length === 0)) {
      throw new DecimalConfigError(
        `decimals.columns key ${JSON.stringify(name)} must be 'column', 'table.column' or 'schema.table.column'`,
      );
    }
    if (!Number.isSafeInteger(scale) || scale < -1000 || scale > 1000) {
      throw new DecimalConfigError(
        `decimals.columns[${JSON.stringify(name)}] must be the column's scale, a whole number (numeric(12,2) → 2), got ${JSON.stringify(scale)}`,
      );
    }
  }
}

/** How one column is encoded in the message. */
type ColumnRule =
  | { readonly kind: 'bytes'; readonly scale: number }
  | { readonly kind: 'bytes-no-scale' }
  | { readonly kind: 'variable' }
  | { readonly kind: 'string' }
  | { readonly kind: 'double'; readonly scale: number | undefined };

type Plan = readonly (readonly [column: string, rule: ColumnRule])[];

const DECIMAL = 'org.apache.kafka.connect.data.Decimal';
const VARIABLE = 'io.debezium.data.VariableScaleDecimal';
const EMPTY: Plan = [];

/** Compiled {@link DebeziumDecimalOptions}: per-table plans, cached. */
export class DecimalColumns {
  readonly #handling: DecimalHandling;
  readonly #columns: ReadonlyMap<string, number>;
  readonly #plans = new Map<string, Plan>();

  constructor(options: DebeziumDecimalOptions = {}) {
    validateDecimalOptions(options);
    this.#handling = options.handling ?? 'precise';
    this.#columns = new Map(Object.entries(options.columns ?? {}));
  }

  /** The configured scale of a column, most specific key first. */
  scaleOf(schema: string, table: string, column: string): number | undefined {
    return (
      this.#columns.get(`${schema}.${table}.${column}`) ??
      this.#columns.get(`${table}.${column}`) ??
      this.#columns.get(column)
    );
  }

  /** The plan from configuration alone (schemas disabled). */
  configured(schema: string, table: string): Plan {
    if (this.#columns.size === 0) return EMPTY;
    const id = `${schema}.${table}`;
    let plan = this.#plans.get(id);
    if (plan === undefined) {
      const columns = new Set<string>();
      for (const name of this.#columns.keys()) {
        const parts = name.split('.');
        const column = parts[parts.length - 1] as string;
        if (
          parts.length === 1 ||
          (parts.length === 2 && parts[0] === table) ||
          (parts[0] === schema && parts[1] === table)
        )
          columns.add(column);
      }
      plan = [...columns].map(
        (column) => [column, this.#ruleFor(this.scaleOf(schema, table, column) as number)] as const,
      );
      this.#plans.set(id, plan);
    }
    return plan;
  }

  #ruleFor(scale: number): ColumnRule {
    if (this.#handling === 'string') return { kind: 'string' };
    if (this.#handling === 'double') return { kind: 'double', scale };
    return { kind: 'bytes', scale };
  }

  /**
   * The plan from a Connect struct schema (the `after`/`before` or key schema of a message with
   * `schemas.enable=true`): the schema says which columns are decimals and how they are encoded;
   * the configured scale fills in only where the schema has none.
   */
  fromConnectSchema(struct: unknown, schema: string, table: string): Plan {
    if (!isPlainObject(struct) || !Array.isArray(struct['fields'])) return this.configured(schema, table);
    let plan: [string, ColumnRule][] | undefined;
    for (const field of struct['fields'] as unknown[]) {
      if (!isPlainObject(field)) continue;
      const column = field['field'];
      if (typeof column !== 'string') continue;
      const rule = this.#ruleFromField(field, schema, table, column);
      if (rule !== undefined) (plan ??= []).push([column, rule]);
    }
    return plan ?? EMPTY;
  }

  #ruleFromField(
    field: Readonly<Record<string, unknown>>,
    schema: string,
    table: string,
    column: string,
  ): ColumnRule | undefined {
    const name = field['name'];
    if (name === VARIABLE) return { kind: 'variable' };
    const configured = this.scaleOf(schema, table, column);
    if (name === DECIMAL) {
      const parameters = field['parameters'];
      const text = isPlainObject(parameters) ? parameters['scale'] : undefined;
      const scale =
        typeof text === 'string' && /^-?\d+$/.test(text) ? Number(text) : typeof text === 'number' ? text : configured;
      return scale === undefined ? { kind: 'bytes-no-scale' } : { kind: 'bytes', scale };
    }
    if (configured === undefined) return undefined;
    // A configured column: the schema's type says which mode the connector is really in.
    if (field['type'] === 'string') return { kind: 'string' };
    if (field['type'] === 'double' || field['type'] === 'float') return { kind: 'double', scale: configured };
    if (field['type'] === 'bytes') return { kind: 'bytes', scale: configured };
    return undefined;
  }
}

/** The envelope's `after` (or `before`) struct schema from a Connect envelope schema. */
export function rowStructOf(envelopeSchema: unknown): unknown {
  if (!isPlainObject(envelopeSchema) || !Array.isArray(envelopeSchema['fields'])) return undefined;
  let before: unknown;
  for (const field of envelopeSchema['fields'] as unknown[]) {
    if (!isPlainObject(field)) continue;
    if (field['field'] === 'after') return field;
    if (field['field'] === 'before') before = field;
  }
  return before;
}

/**
 * Rewrites the decimal columns of `row` in place to exact decimal text. Returns undefined when
 * done, or the dead-letter reason for the first column whose value cannot be decoded with
 * certainty. `VariableScaleDecimal` structs (`{scale, value}`) are decoded wherever they appear:
 * they carry their own scale.
 */
export function decodeDecimalColumns(row: Record<string, unknown>, plan: Plan, where: string): string | undefined {
  for (const [column, rule] of plan) {
    const value = row[column];
    if (value === null || value === undefined) continue;
    const decoded = decodeColumn(value, rule);
    if (typeof decoded !== 'string' || decoded.startsWith('!')) return reasonFor(column, where, rule, value, decoded);
    row[column] = decoded;
  }
  for (const column of Object.keys(row)) {
    const value = row[column];
    if (typeof value === 'object' && value !== null && isVariableScale(value)) {
      const decoded = decodeVariable(value);
      if (decoded === undefined) return reasonFor(column, where, { kind: 'variable' }, value, undefined);
      row[column] = decoded;
    }
  }
  return undefined;
}

function isVariableScale(value: object): value is { scale: unknown; value: unknown } {
  // Own keys only: Avro records (avsc) inherit enumerable methods.
  return 'scale' in value && 'value' in value && !Array.isArray(value) && Object.keys(value).length === 2;
}

function decodeVariable(struct: { scale: unknown; value: unknown }): string | undefined {
  const { scale, value } = struct;
  if (typeof scale !== 'number' || !Number.isSafeInteger(scale)) return undefined;
  if (typeof value === 'string') {
    const unscaled = unscaledFromBase64(value);
    return unscaled === undefined ? undefined : formatUnscaled(unscaled, scale);
  }
  if (value instanceof Uint8Array && value.length > 0) return formatUnscaled(unscaledFromBytes(value), scale);
  return undefined;
}

/** Decimal text, or undefined / `'!…'` when not decodable. */
function decodeColumn(value: unknown, rule: ColumnRule): string | undefined {
  switch (rule.kind) {
    case 'bytes': {
      if (typeof value === 'string') {
        const unscaled = unscaledFromBase64(value);
        return unscaled === undefined ? undefined : formatUnscaled(unscaled, rule.scale);
      }
      if (value instanceof Uint8Array && value.length > 0) return formatUnscaled(unscaledFromBytes(value), rule.scale);
      // Already decoded (the Avro decimal logical type), or the connector is in another mode.
      return undefined;
    }
    case 'variable':
      return typeof value === 'object' && value !== null && isVariableScale(value) ? decodeVariable(value) : undefined;
    case 'string':
      return typeof value === 'string' && isDecimalText(value) ? value : undefined;
    case 'double':
      return typeof value === 'number' ? decimalFromDouble(value, rule.scale) : undefined;
    case 'bytes-no-scale':
      return '!no-scale';
  }
}

function reasonFor(
  column: string,
  where: string,
  rule: ColumnRule,
  value: unknown,
  decoded: string | undefined,
): string {
  const shown =
    typeof value === 'string'
      ? JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
      : value instanceof Uint8Array
        ? `${value.length} bytes`
        : JSON.stringify(value);
  const prefix = `decimal column ${where}.${column}`;
  if (decoded === '!no-scale')
    return `${prefix}: the schema marks it Decimal but gives no scale; set decimals.columns['${where}.${column}'] to the column's scale`;
  switch (rule.kind) {
    case 'bytes':
      return `${prefix}: ${shown} is not base64 of the unscaled bytes (decimal.handling.mode=precise); if the connector runs decimal.handling.mode=string or double, set decimals.handling to match`;
    case 'variable':
      return `${prefix}: ${shown} is not a VariableScaleDecimal {scale, value}`;
    case 'string':
      return `${prefix}: ${shown} is not decimal text (decimal.handling.mode=string); if the connector runs precise or double, set decimals.handling to match`;
    case 'double':
      return `${prefix}: ${shown} is not a finite number (decimal.handling.mode=double); if the connector runs precise or string, set decimals.handling to match`;
    case 'bytes-no-scale':
      return `${prefix}: unknown scale`;
  }
}
