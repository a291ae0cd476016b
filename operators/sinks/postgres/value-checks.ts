/**
 * Client-side checks of row values against the target table's column types. A value Postgres
 * refuses on the sink's bare write path aborts the whole open transaction, which must then be
 * written again; a check here lets the sink dead-letter that row before the batch is written.
 *
 * The checks are one-sided on purpose: `write` means "no reason to doubt it" (or a type we do not
 * model), a refusal is given only where it is certain (a NUL character, NULL into NOT NULL), and
 * everything else that looks unusual is `ask`: Postgres itself parses it (refusal-probe.ts), so a
 * value Postgres accepts is never dead-lettered here. What slips through is still caught by the
 * write's refusal path.
 */

/** A column as the sink writes it: `format_type` text, NOT NULL, and whether the type is an enum. */
export interface ColumnInfo {
  readonly type: string;
  readonly notNull: boolean;
  readonly isEnum: boolean;
}

export interface CertainRefusal {
  readonly sqlState: string;
  readonly message: string;
}

export type Verdict = 'write' | 'ask' | CertainRefusal;

export type ValueCheck = (value: unknown) => Verdict;

interface IntRange {
  /** Decimal text with at most this many digits is always in range. */
  readonly text: RegExp;
  readonly min: bigint;
  readonly max: bigint;
}

const INT_RANGES: Readonly<Record<string, IntRange>> = {
  smallint: { text: /^-?\d{1,4}$/, min: -32768n, max: 32767n },
  integer: { text: /^-?\d{1,9}$/, min: -2147483648n, max: 2147483647n },
  bigint: { text: /^-?\d{1,18}$/, min: -9223372036854775808n, max: 9223372036854775807n },
};

const DECIMAL = /^[+-]?(\d*)(?:\.(\d*))?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$/;

/** The check for one column; built once per column when the table is described. */
export function valueCheck(name: string, column: ColumnInfo): ValueCheck {
  const typed = typeCheck(column);
  return (value) => {
    if (value === null || value === undefined) {
      return column.notNull
        ? { sqlState: '23502', message: `null value in column "${name}" violates not-null constraint` }
        : 'write';
    }
    // Postgres text can hold no NUL character, whatever the column type: the parameter itself is refused.
    if (typeof value === 'string' && value.includes('\u0000'))
      return { sqlState: '22021', message: `invalid byte sequence for encoding "UTF8": 0x00 (in column "${name}")` };
    return typed(value);
  };
}

function typeCheck(column: ColumnInfo): (value: unknown) => Verdict {
  const type = column.type;
  if (column.isEnum) return (v) => (typeof v === 'string' ? 'ask' : 'write');
  if (type.endsWith('[]')) return () => 'write';
  const int = INT_RANGES[type];
  if (int !== undefined) return (v) => integerVerdict(v, int);
  const numeric = /^numeric(?:\((\d+),(\d+)\))?$/.exec(type);
  if (numeric !== null) {
    const limits =
      numeric[1] === undefined
        ? undefined
        : { integerDigits: Number(numeric[1]) - Number(numeric[2]), scale: Number(numeric[2]) };
    return (v) => numericVerdict(v, limits);
  }
  if (type === 'double precision')
    return (v) => (typeof v === 'number' && Number.isFinite(v) ? 'write' : askIfPrimitive(v));
  if (type === 'real')
    return (v) =>
      typeof v === 'number' && (v === 0 || (Math.abs(v) >= 1.2e-38 && Math.abs(v) <= 3.4e38))
        ? 'write'
        : askIfPrimitive(v);
  if (type === 'boolean') return (v) => (typeof v === 'boolean' ? 'write' : askIfPrimitive(v));
  if (type === 'text' || type === 'character varying' || type === 'character') return () => 'write';
  const length = /^(?:character varying|character)\((\d+)\)$/.exec(type);
  if (length !== null) {
    const max = Number(length[1]);
    // JS length counts UTF-16 units, never fewer than Postgres's characters.
    return (v) => (typeof v !== 'string' || v.length <= max ? 'write' : 'ask');
  }
  if (type === 'date' || type.startsWith('timestamp'))
    return (v) =>
      v instanceof Date
        ? Number.isNaN(v.getTime())
          ? 'ask'
          : 'write'
        : typeof v === 'string' && isPlainIsoTime(v)
          ? 'write'
          : askIfPrimitive(v);
  if (type === 'uuid') return (v) => (typeof v === 'string' && UUID.test(v) ? 'write' : askIfPrimitive(v));
  // A string into json is sent as the JSON text itself; objects are serialised by the driver.
  if (type === 'json' || type === 'jsonb') return (v) => (typeof v === 'string' ? 'ask' : 'write');
  return () => 'write';
}

function askIfPrimitive(v: unknown): Verdict {
  return typeof v === 'string' || typeof v === 'number' ? 'ask' : 'write';
}

function integerVerdict(v: unknown, range: IntRange): Verdict {
  if (typeof v === 'number')
    return Number.isSafeInteger(v) && BigInt(v) >= range.min && BigInt(v) <= range.max ? 'write' : 'ask';
  if (typeof v === 'bigint') return v >= range.min && v <= range.max ? 'write' : 'ask';
  if (typeof v === 'string') return range.text.test(v) ? 'write' : 'ask';
  return 'write';
}

/** Fits when its integer digits stay under precision − scale, or reach it with nothing to round. */
function numericVerdict(v: unknown, limits: { integerDigits: number; scale: number } | undefined): Verdict {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return 'ask';
    return limits === undefined || Math.abs(v) < 10 ** limits.integerDigits - 1 ? 'write' : 'ask';
  }
  if (typeof v === 'bigint')
    return limits === undefined || (v < 0n ? -v : v).toString().length <= limits.integerDigits ? 'write' : 'ask';
  if (typeof v !== 'string') return 'write';
  const m = DECIMAL.exec(v);
  if (m === null || ((m[1] ?? '') === '' && (m[2] ?? '') === '')) return 'ask';
  if (limits === undefined) return 'write';
  const integer = (m[1] ?? '').replace(/^0+/, '').length;
  return integer < limits.integerDigits || (integer === limits.integerDigits && (m[2] ?? '').length <= limits.scale)
    ? 'write'
    : 'ask';
}

const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** `2024-05-01`, `2024-05-01T12:00:00.123Z`, `2024-05-01 12:00:00+02`: with a real calendar date. */
function isPlainIsoTime(text: string): boolean {
  const m = ISO_TIME.exec(text);
  if (m === null) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > (month === 2 && !leap ? 28 : (DAYS[month - 1] as number)))
    return false;
  if (m[4] === undefined) return true;
  return Number(m[4]) <= 23 && Number(m[5]) <= 59 && (m[6] === undefined || Number(m[6]) <= 59);
}
