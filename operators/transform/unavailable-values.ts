/**
 * Debezium's "unavailable value" placeholders. With `REPLICA IDENTITY DEFAULT`, Postgres does not
 * log an unchanged TOASTed column (large text, bytea, arrays, jsonb, hstore) in an update, and
 * the connector puts `unavailable.value.placeholder` (default `__debezium_unavailable_value`)
 * there instead. Its shape depends on the column type (Debezium's UnchangedToastedPlaceholder and
 * PostgresValueConverter, JSON converter):
 *  - text, varchar, json, jsonb, xml, bytea with `binary.handling.mode=hex`: the placeholder string;
 *  - bytea with `bytes` (the default; JSON writes bytes as base64): base64 of its bytes;
 *  - text[] / varchar[]: `[placeholder]`; bytea[]: `[base64]`; int[] / bigint[]: its bytes as numbers;
 *  - uuid[]: `[name-based UUID (v3) of its bytes]`; hstore: `{placeholder: placeholder}` (map mode)
 *    or that map as a JSON string (json mode).
 * A `hex:`-prefixed setting means the bytes are given in hex (as the connector reads it).
 */
import { createHash } from 'node:crypto';

export const DEFAULT_UNAVAILABLE_PLACEHOLDER = '__debezium_unavailable_value';

export interface UnavailableValueMatcher {
  /** The names of `row`'s columns that hold a placeholder (empty when none: the common case). */
  columnsIn(row: Readonly<Record<string, unknown>>): string[];
}

export function unavailableValueMatcher(
  placeholder: string = DEFAULT_UNAVAILABLE_PLACEHOLDER,
): UnavailableValueMatcher {
  const bytes = placeholder.startsWith('hex:')
    ? Buffer.from(placeholder.slice(4), 'hex')
    : Buffer.from(placeholder, 'utf8');
  // Java's `new String(bytes)`: the platform charset, UTF-8 on every supported JVM setup.
  const text = bytes.toString('utf8');
  const base64 = bytes.toString('base64');
  const strings = new Set([text, base64, JSON.stringify({ [text]: text })]);
  // Looking a string up in the set hashes all of it: most column values are ruled out by length.
  const lengths = new Set([...strings].map((s) => s.length));
  const signedBytes = [...bytes].map((b) => (b > 127 ? b - 256 : b));
  const arrays: readonly (readonly unknown[])[] = [[text], [base64], signedBytes, [nameUuid(bytes)]];
  const isPlaceholder = (value: unknown): boolean => {
    if (typeof value === 'string') return lengths.has(value.length) && strings.has(value);
    if (Array.isArray(value)) return arrays.some((form) => sameArray(form, value));
    if (typeof value === 'object' && value !== null) {
      const entries = Object.entries(value);
      return entries.length === 1 && entries[0]?.[0] === text && entries[0][1] === text;
    }
    return false;
  };
  return {
    columnsIn(row) {
      let found: string[] | undefined;
      for (const column in row) {
        const value = row[column];
        // Cheap first test: placeholders are strings, arrays or one-entry objects.
        if (value === null || typeof value === 'number' || typeof value === 'boolean') continue;
        if (isPlaceholder(value)) (found ??= []).push(column);
      }
      return found ?? [];
    },
  };
}

function sameArray(form: readonly unknown[], value: readonly unknown[]): boolean {
  if (form.length !== value.length) return false;
  for (let i = 0; i < form.length; i++) if (form[i] !== value[i]) return false;
  return true;
}

/** Java's `UUID.nameUUIDFromBytes`: MD5, version 3, IETF variant. */
function nameUuid(bytes: Buffer): string {
  const md5 = createHash('md5').update(bytes).digest();
  md5[6] = ((md5[6] as number) & 0x0f) | 0x30;
  md5[8] = ((md5[8] as number) & 0x3f) | 0x80;
  const hex = md5.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
