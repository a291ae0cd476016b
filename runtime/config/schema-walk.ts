/**
 * Reading the configuration schema itself: which environment variable sets which field, and what
 * type a field has (environment variables and `--set` values arrive as strings).
 */
import { z } from 'zod';

type AnySchema = z.core.$ZodType;

const WRAPPERS = new Set(['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch', 'nonoptional']);

/** The schema under defaults/optionals, and every `env` named on the way down. */
function unwrap(schema: AnySchema): { inner: AnySchema; env: string | undefined } {
  let current = schema;
  let env = z.globalRegistry.get(current)?.env;
  for (;;) {
    const def = current._zod.def as { type: string; innerType?: AnySchema; in?: AnySchema };
    const next = WRAPPERS.has(def.type) ? def.innerType : def.type === 'pipe' ? def.in : undefined;
    if (next === undefined) return { inner: current, env };
    current = next;
    env ??= z.globalRegistry.get(current)?.env;
  }
}

function shapeOf(schema: AnySchema): Record<string, AnySchema> | undefined {
  const def = unwrap(schema).inner._zod.def as { type: string; shape?: Record<string, AnySchema> };
  return def.type === 'object' ? def.shape : undefined;
}

/** Every field that names an environment variable, with its path. */
export function envFields(schema: AnySchema, prefix: readonly string[] = []): { path: string[]; env: string }[] {
  const fields: { path: string[]; env: string }[] = [];
  const shape = shapeOf(schema);
  if (shape === undefined) return fields;
  for (const [key, field] of Object.entries(shape)) {
    const path = [...prefix, key];
    const { env } = unwrap(field);
    if (env !== undefined) fields.push({ path, env });
    fields.push(...envFields(field, path));
  }
  return fields;
}

/** The schema at `path`, or undefined when the path leads nowhere. */
export function fieldAt(schema: AnySchema, path: readonly string[]): AnySchema | undefined {
  let current: AnySchema | undefined = schema;
  for (const key of path) {
    current = current === undefined ? undefined : shapeOf(current)?.[key];
  }
  return current;
}

/**
 * A string value converted to the type the field expects. What does not convert stays a string,
 * so the schema reports it with the field's name.
 */
export function coerceString(field: AnySchema | undefined, raw: string): unknown {
  if (field === undefined) return raw;
  const type = (unwrap(field).inner._zod.def as { type: string }).type;
  if (type === 'number') {
    const value = Number(raw);
    return raw.trim() !== '' && Number.isFinite(value) ? value : raw;
  }
  if (type === 'boolean') {
    if (/^(1|true|yes)$/i.test(raw)) return true;
    if (/^(0|false|no)?$/i.test(raw)) return false;
    return raw;
  }
  if (type === 'object' || type === 'array' || type === 'union' || type === 'record') {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      return raw;
    }
  }
  return raw;
}
