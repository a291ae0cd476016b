/**
 * Loads a job's configuration from, lowest first: the schema's defaults, a JSON file
 * (`--config F` or `CDCFLOW_CONFIG`), environment variables, command-line flags. The result is
 * validated as a whole; an error names every bad field and where its value came from.
 *
 * ```ts
 * const config = loadJobConfig({ name: 'orders-to-postgres', settings: z.object({ table: z.string().default('orders').meta({ env: 'CDCFLOW_PG_TABLE' }) }) });
 * const env = StreamEnvironment.create(environmentOptions(config, { log: print }));
 * ```
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { z } from 'zod';
import { defaultCheckpointRoot, defaultStateDir } from './checkpoint-root.ts';
import { ConfigError } from './config-error.ts';
import { coreConfigShape, jobConfigSchema, type JobConfig } from './config-schema.ts';
import { parseJobFlags } from './job-flags.ts';
import { coerceString, envFields, fieldAt } from './schema-walk.ts';

type Environ = Readonly<Record<string, string | undefined>>;

export interface LoadJobConfigOptions<S extends z.ZodType> {
  /** The job's name unless the file, CDCFLOW_JOB_NAME or --name say otherwise. */
  readonly name: string;
  /** The job's own settings; name environment variables with `.meta({ env: 'X' })`. */
  readonly settings?: S;
  /** @default process.argv.slice(2) */
  readonly argv?: readonly string[];
  /** @default process.env */
  readonly environ?: Environ;
}

/**
 * The main thread hands the loaded configuration to the worker threads of a parallel job through
 * this variable: they run the job file again, without its command line.
 */
export const RESOLVED_CONFIG_ENV = 'CDCFLOW_RESOLVED_CONFIG';

/** Fields holding paths; a relative one is resolved against the file it came from, or the working directory. */
const PATH_FIELDS = ['checkpoints.root', 'checkpoints.stagingDir', 'state.dir', 'rest.tokenFile'];

export function loadJobConfig<S extends z.ZodType = z.ZodObject<Record<string, never>>>(
  options: LoadJobConfigOptions<S>,
): JobConfig<z.output<S>> {
  if (options.argv !== undefined || options.environ !== undefined || !isMainThread) return load(options);
  // A job file reading its own command line: a bad configuration is a usage error, not a crash.
  try {
    return load(options);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
}

function load<S extends z.ZodType>(options: LoadJobConfigOptions<S>): JobConfig<z.output<S>> {
  const settings = (options.settings ?? z.object({})) as S;
  const schema = jobConfigSchema(settings);
  const environ = options.environ ?? process.env;
  const handedDown = isMainThread ? undefined : environ[RESOLVED_CONFIG_ENV];
  if (handedDown !== undefined) return validate(schema, JSON.parse(handedDown) as unknown, new Layers());

  const layers = new Layers();
  layers.assign(
    [],
    {
      name: options.name,
      settings: {},
      checkpoints: { root: defaultCheckpointRoot(environ) },
      state: { dir: defaultStateDir(environ) },
    },
    'default',
  );
  const flags = parseJobFlags(options.argv ?? process.argv.slice(2));
  const file = flags.configFile ?? environ['CDCFLOW_CONFIG'];
  if (file !== undefined)
    layers.assign([], readConfigFile(file), `config file ${resolve(file)}`, dirname(resolve(file)));
  for (const { path, env } of envFields(schema)) {
    const raw = environ[env];
    if (raw !== undefined && raw !== '') layers.assign(path, coerceString(fieldAt(schema, path), raw), `${env}=${raw}`);
  }
  // Older name of the REST port (it served /metrics before there was a REST API).
  const metricsPort = environ['CDCFLOW_METRICS_PORT'];
  if (environ['CDCFLOW_REST_PORT'] === undefined && metricsPort !== undefined && metricsPort !== '') {
    layers.assign(
      ['rest', 'port'],
      coerceString(fieldAt(schema, ['rest', 'port']), metricsPort),
      `CDCFLOW_METRICS_PORT=${metricsPort}`,
    );
  }
  for (const assignment of flags.assignments) {
    const path =
      assignment.path[0] !== undefined && (assignment.path[0] in coreConfigShape || assignment.path[0] === 'settings')
        ? [...assignment.path]
        : ['settings', ...assignment.path];
    layers.assign(
      path,
      assignment.raw ? coerceString(fieldAt(schema, path), String(assignment.value)) : assignment.value,
      assignment.origin,
    );
  }
  const config = validate(schema, layers.value, layers);
  if (options.environ === undefined) process.env[RESOLVED_CONFIG_ENV] = JSON.stringify(config);
  return config;
}

function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new ConfigError(
      `cannot read the configuration file ${resolve(file)} (${(cause as Error).message}): check --config / CDCFLOW_CONFIG`,
      { cause },
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new ConfigError(`the configuration file ${resolve(file)} is not valid JSON: ${(cause as Error).message}`, {
      cause,
    });
  }
}

function validate<S extends z.ZodType>(
  schema: ReturnType<typeof jobConfigSchema<S>>,
  value: unknown,
  layers: Layers,
): JobConfig<z.output<S>> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data as JobConfig<z.output<S>>;
  const name =
    typeof (value as { name?: unknown }).name === 'string' ? ` of job '${(value as { name: string }).name}'` : '';
  const lines = parsed.error.issues.flatMap((issue) => {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
    return keys.map((path) => {
      const field = path.map(String).join('.') || '(root)';
      const message = issue.code === 'unrecognized_keys' ? 'unknown field (misspelt?)' : issue.message;
      return `  ${field}: ${message} (from ${layers.originOf(path.map(String))})`;
    });
  });
  throw new ConfigError(`invalid configuration${name}:\n${lines.join('\n')}`);
}

/** The merged raw configuration, remembering where each value came from. */
class Layers {
  value: Record<string, unknown> = {};
  private readonly origins = new Map<string, string>();

  assign(path: readonly string[], value: unknown, origin: string, baseDir?: string): void {
    const resolved = resolvePaths(path, value, baseDir ?? process.cwd());
    if (path.length === 0) {
      if (!isPlainObject(resolved)) throw new ConfigError(`${origin}: expected a JSON object at the top level`);
      this.value = merge(this.value, resolved);
    } else {
      let target = this.value;
      for (const key of path.slice(0, -1)) {
        const next = target[key];
        target = target[key] = isPlainObject(next) ? next : {};
      }
      const last = path[path.length - 1] as string;
      target[last] = isPlainObject(resolved) && isPlainObject(target[last]) ? merge(target[last], resolved) : resolved;
    }
    this.record(path, resolved, origin);
  }

  originOf(path: readonly string[]): string {
    for (let n = path.length; n >= 0; n--) {
      const origin = this.origins.get(path.slice(0, n).join('.'));
      if (origin !== undefined) return origin;
    }
    return 'default';
  }

  private record(path: readonly string[], value: unknown, origin: string): void {
    this.origins.set(path.join('.'), origin);
    if (isPlainObject(value))
      for (const [key, child] of Object.entries(value)) this.record([...path, key], child, origin);
  }
}

function resolvePaths(path: readonly string[], value: unknown, baseDir: string): unknown {
  const key = path.join('.');
  // A savepoint name has no '/'; anything else names a folder.
  const isPath =
    PATH_FIELDS.includes(key) ||
    key === 'restore.checkpoint' ||
    (key === 'restore.savepoint' && typeof value === 'string' && value.includes('/'));
  // An object-store URL (s3://) or file:// URL is taken as written.
  if (typeof value === 'string' && isPath)
    return isAbsolute(value) || /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : resolve(baseDir, value);
  if (!isPlainObject(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolvePaths([...path, k], v, baseDir)]));
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const existing = out[key];
    out[key] = isPlainObject(existing) && isPlainObject(value) ? merge(existing, value) : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
