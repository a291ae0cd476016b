/**
 * The typed job configuration: what every job shares (name, checkpoints, state, parallelism,
 * restore, REST API, lifecycle) plus the job's own `settings`. Each field that can come from the
 * environment names its variable with `.meta({ env })`, so the schema is the one list of knobs.
 */
import { z } from 'zod';
import { DEFAULT_MAX_PARALLELISM } from '../../state/index.ts';
import { sloSchema } from '../signals/slo-schema.ts';
import { defaultCheckpointRoot, defaultStateDir } from './checkpoint-root.ts';
import { CHECKPOINT_DEFAULTS, JOB_DEFAULTS } from './defaults.ts';

declare module 'zod' {
  interface GlobalMeta {
    /** The environment variable that sets this field (strings are converted to the field's type). */
    env?: string;
  }
}

export const JOB_NAME_PATTERN = /^[A-Za-z0-9_.-]+$/;

const jobName = z
  .string()
  .regex(
    JOB_NAME_PATTERN,
    "may use only letters, digits, '-', '_' and '.' (it names folders and Kafka transactional ids)",
  );
const positiveMs = z.number().int().positive();

/**
 * Where a start restores from. `savepoint`: a savepoint name (in this job's `savepoints/`) or a
 * path; `checkpoint`: a checkpoint id or a path to a checkpoint folder. An explicit one never
 * falls back to another.
 */
export const restoreSchema = z.union([
  z.literal('latest'),
  z.literal('none'),
  z.strictObject({ savepoint: z.string().min(1) }),
  z.strictObject({ checkpoint: z.union([z.number().int().positive(), z.string().min(1)]) }),
]);

export const stateBackendSchema = z.enum(['rocksdb', 'memory']);
/** Where keyed state lives while a job runs. */
export type StateBackendName = z.infer<typeof stateBackendSchema>;

export const coreConfigShape = {
  name: jobName.meta({ env: 'CDCFLOW_JOB_NAME' }),
  parallelism: z
    .number()
    .int()
    .min(1)
    .max(DEFAULT_MAX_PARALLELISM)
    .meta({ env: 'CDCFLOW_PARALLELISM' })
    .default(JOB_DEFAULTS.parallelism),
  restore: restoreSchema.default(JOB_DEFAULTS.restore),
  /** Restore although an at-least-once sink with side effects committed past the restore point (CLI `--allow-replay`). */
  allowReplay: z.boolean().meta({ env: 'CDCFLOW_ALLOW_REPLAY' }).default(JOB_DEFAULTS.allowReplay),
  /** Service-level objectives (runtime/signals/slo.ts): `/readyz` answers 503 naming the ones not met. */
  slo: sloSchema.prefault({}),
  /** A fresh start may roll back this job's prepared sink transactions (after an operator decided so). */
  discardSinkTransactions: z.boolean().default(JOB_DEFAULTS.discardSinkTransactions),
  checkpoints: z
    .strictObject({
      /** Absolute after loading; `<root>/<name>` is the job's folder. */
      root: z
        .string()
        .min(1)
        .meta({ env: 'CDCFLOW_CHECKPOINT_DIR' })
        .default(() => defaultCheckpointRoot()),
      /** With an `s3://bucket/prefix` root: the local folder for state files before upload. */
      stagingDir: z.string().min(1).meta({ env: 'CDCFLOW_CHECKPOINT_STAGING_DIR' }).optional(),
      intervalMs: positiveMs.meta({ env: 'CDCFLOW_CHECKPOINT_INTERVAL_MS' }).default(CHECKPOINT_DEFAULTS.intervalMs),
      timeoutMs: positiveMs.default(CHECKPOINT_DEFAULTS.timeoutMs),
      retain: z.number().int().min(1).default(CHECKPOINT_DEFAULTS.retain),
      /** Checkpoints in flight at once; unset: the environment's default (2). */
      maxConcurrent: z.number().int().min(1).optional(),
    })
    .prefault({}),
  state: z
    .strictObject({
      backend: stateBackendSchema.default(JOB_DEFAULTS.stateBackend),
      dir: z
        .string()
        .min(1)
        .meta({ env: 'CDCFLOW_STATE_DIR' })
        .default(() => defaultStateDir()),
    })
    .prefault({}),
  rest: z
    .strictObject({
      /** Off: no HTTP server at all (no REST API, no /metrics); the CLI cannot reach the job. */
      enabled: z.boolean().meta({ env: 'CDCFLOW_REST_ENABLED' }).default(true),
      /** Binding anything but a loopback address needs `token` or `tokenFile`. */
      host: z.string().min(1).meta({ env: 'CDCFLOW_REST_HOST' }).default(JOB_DEFAULTS.restHost),
      /** 0 picks a free port (the CLI finds it in the checkpoint root). */
      port: z.number().int().min(0).max(65_535).meta({ env: 'CDCFLOW_REST_PORT' }).default(0),
      /** Bearer token for mutating calls; without one a random token is written to `<root>/<name>/rest-token`. */
      token: z.string().min(16, 'must be at least 16 characters').meta({ env: 'CDCFLOW_REST_TOKEN' }).optional(),
      tokenFile: z.string().min(1).meta({ env: 'CDCFLOW_REST_TOKEN_FILE' }).optional(),
    })
    .refine((rest) => rest.token === undefined || rest.tokenFile === undefined, {
      message: 'set token or tokenFile, not both',
      path: ['tokenFile'],
    })
    .prefault({}),
  lifecycle: z
    .strictObject({
      /** Graceful stop (SIGTERM, `cdcflow stop`) cancels the job if it takes longer. */
      stopDeadlineMs: positiveMs.meta({ env: 'CDCFLOW_STOP_DEADLINE_MS' }).default(JOB_DEFAULTS.stopDeadlineMs),
      /** Take over the job's lease although its holder cannot be proven dead (it runs on another host). */
      takeoverLease: z.boolean().default(JOB_DEFAULTS.takeoverLease),
    })
    .prefault({}),
};

export const coreConfigSchema = z.strictObject(coreConfigShape);

/** The shared part of a loaded configuration (paths absolute). */
export type CoreConfig = z.output<typeof coreConfigSchema>;
export type RestoreConfig = z.output<typeof restoreSchema>;

/** A loaded configuration: the shared part plus the job's own `settings`. */
export type JobConfig<Settings = Record<string, never>> = CoreConfig & { readonly settings: Settings };

/** The schema of a whole configuration for a job whose settings are `settings`. */
export function jobConfigSchema<S extends z.ZodType>(settings: S) {
  return z.strictObject({ ...coreConfigShape, settings: strictSettings(settings) });
}

/** A misspelt setting must fail the start, not be dropped: a plain z.object becomes strict (z.looseObject stays loose). */
function strictSettings<S extends z.ZodType>(settings: S): S {
  const def = settings._zod.def as { type: string; catchall?: unknown };
  return settings instanceof z.ZodObject && def.type === 'object' && def.catchall === undefined
    ? (settings.strict() as unknown as S)
    : settings;
}
