/**
 * How reconcile compares one column's values across two tables whose types may differ (a sink
 * that stores `amount` as text, a timestamptz written from an ISO string): both sides are read as
 * Postgres's text output and brought to one canonical form per column kind, so `99.90` equals
 * `99.9`, `2026-01-01 10:00:00+00` equals `2026-01-01T10:00:00.000000Z`, and `EUR` equals `EUR `
 * in a char(4). A value that does not parse as its kind is compared as it is, never coerced.
 */
export type ColumnKind = 'integer' | 'numeric' | 'float' | 'timestamp' | 'char' | 'json' | 'bool' | 'text';

/** The kind of a Postgres type (pg_type.typname). */
export function kindOfType(typname: string): ColumnKind {
  switch (typname) {
    case 'int2':
    case 'int4':
    case 'int8':
      return 'integer';
    case 'numeric':
      return 'numeric';
    case 'float4':
    case 'float8':
      return 'float';
    case 'timestamptz':
    case 'timestamp':
      return 'timestamp';
    case 'bpchar':
      return 'char';
    case 'json':
    case 'jsonb':
      return 'json';
    case 'bool':
      return 'bool';
    default:
      return 'text';
  }
}

/** The kind to compare a column in, given its type on each side: the more specific one wins. */
export function commonKind(source: ColumnKind, sink: ColumnKind): ColumnKind {
  if (source === sink) return source;
  const rank: readonly ColumnKind[] = ['timestamp', 'json', 'bool', 'float', 'numeric', 'integer', 'char', 'text'];
  const pair = [source, sink];
  // Integers compared with decimals or floats are decimals; a float on either side compares as a float.
  if (pair.includes('float') && pair.every((k) => k === 'float' || k === 'numeric' || k === 'integer' || k === 'text'))
    return 'float';
  if (pair.includes('numeric') && pair.every((k) => k === 'numeric' || k === 'integer' || k === 'text'))
    return 'numeric';
  return rank.find((k) => pair.includes(k)) ?? 'text';
}

const decimal = /^\s*([+-])?(\d*)(?:\.(\d*))?\s*$/;

/** `-0012.3400` → `-12.34`, `0.00` → `0`, `5.` → `5`; undefined when it is not a plain decimal. */
export function canonicalDecimal(text: string): string | undefined {
  const m = decimal.exec(text);
  if (m === null) return undefined;
  const [, sign, intPart = '', fracPart = ''] = m;
  if (intPart === '' && fracPart === '') return undefined;
  const int = intPart.replace(/^0+/, '') || '0';
  const frac = fracPart.replace(/0+$/, '');
  const body = frac === '' ? int : `${int}.${frac}`;
  return sign === '-' && body !== '0' ? `-${body}` : body;
}

const timestamp =
  /^\s*(\d{4,})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s*(Z|[+-]\d{2}(?::?\d{2}){0,2})?\s*$/i;

/**
 * An instant as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds), from Postgres's output or ISO
 * 8601; a value without an offset is taken as UTC (a `timestamp` column). Undefined when unparseable.
 */
export function canonicalTimestamp(text: string): string | undefined {
  const m = timestamp.exec(text);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, frac = '', zone = 'Z'] = m;
  let offsetMinutes = 0;
  if (zone.toUpperCase() !== 'Z') {
    const digits = zone.slice(1).replace(/:/g, '');
    offsetMinutes =
      (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || '0')) * (zone.startsWith('-') ? -1 : 1);
  }
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) - offsetMinutes * 60_000;
  if (!Number.isFinite(ms)) return undefined;
  const micros = frac.padEnd(6, '0').slice(0, 6);
  return `${new Date(ms).toISOString().slice(0, 19)}.${micros}Z`;
}

function canonicalJson(text: string): string | undefined {
  try {
    return JSON.stringify(sortKeys(JSON.parse(text) as unknown));
  } catch {
    return undefined;
  }
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** The comparable form of one value (Postgres text output, or null) in `kind`. */
export function normalizeValue(value: string | null, kind: ColumnKind): string | null {
  if (value === null) return null;
  switch (kind) {
    case 'integer':
    case 'numeric':
      return canonicalDecimal(value) ?? value;
    case 'float': {
      const n = Number(value);
      return value.trim() !== '' && Number.isFinite(n) ? String(n) : value;
    }
    case 'timestamp':
      return canonicalTimestamp(value) ?? value;
    case 'char':
      return value.replace(/ +$/, '');
    case 'json':
      return canonicalJson(value) ?? value;
    case 'bool':
      return /^(t|true|1|y|yes|on)$/i.test(value.trim())
        ? 'true'
        : /^(f|false|0|n|no|off)$/i.test(value.trim())
          ? 'false'
          : value;
    case 'text':
      return value;
  }
}

/**
 * Orders two keys the way the readers' ORDER BY does: integers numerically (BigInt), everything
 * else by UTF-8 bytes (the readers sort text keys with COLLATE "C").
 */
export function compareKeys(a: readonly string[], b: readonly string[], kinds: readonly ColumnKind[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as string;
    const y = b[i] as string;
    let c: number;
    if (kinds[i] === 'integer') {
      const bx = BigInt(x);
      const by = BigInt(y);
      c = bx < by ? -1 : bx > by ? 1 : 0;
    } else {
      c = Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8'));
    }
    if (c !== 0) return c;
  }
  return 0;
}
