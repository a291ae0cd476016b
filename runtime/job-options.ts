import { resolve } from 'node:path';
import type { SloOptions } from './signals/slo.ts';
import { isS3Url, localCheckpointPath, validateCheckpointRoot, type RestoreSource } from '../checkpoints/index.ts';
import { isMainThread, workerData } from 'node:worker_threads';
import { lineLogger, lineSinkLogger, loggerFor, type Logger } from '../operators/logger.ts';
import type { DeadLetterWriter } from '../operators/sources/kafka/dead-letter-writer.ts';
import { CdcflowError, DEFAULT_MAX_PARALLELISM, type RocksDbMemoryOptions } from '../state/index.ts';
import { defaultCheckpointRoot, defaultStateDir } from './config/checkpoint-root.ts';
import type { StateBackendName } from './config/config-schema.ts';
import { CHECKPOINT_DEFAULTS, JOB_DEFAULTS } from './config/defaults.ts';

/** Options of `StreamEnvironment.create`. */
export interface EnvironmentOptions {
  /** Names checkpoints, consumer clients, transactional ids and metrics. Letters, digits, '-', '_', '.'. */
  readonly jobName: string;
  readonly checkpoints?: {
    /** @default 1000 */
    readonly intervalMs?: number;
    /**
     * The checkpoint root; the job's folder is `<dir>/<jobName>`. A relative path is resolved
     * once, at create. @default `$CDCFLOW_HOME/checkpoints`, else `$XDG_STATE_HOME/cdcflow/checkpoints`,
     * else `~/.local/state/cdcflow/checkpoints` (never the working directory: see config/checkpoint-root.ts)
     */
    readonly dir?: string;
    /**
     * Object-store roots only (`dir: 's3://bucket/prefix'`): the local folder state files are
     * written to before upload and downloaded to on restore; the job's lease, REST registration
     * and replay records stay here too. @default the default local checkpoint root
     */
    readonly stagingDir?: string;
    /** @default 60000 */
    readonly timeoutMs?: number;
    /** Completed checkpoints kept. @default 3 */
    readonly retain?: number;
    /**
     * Checkpoints in flight at once. With 2, the next barrier goes out on the interval while the
     * previous checkpoint is still being acknowledged, persisted or committed, so a slow
     * checkpoint does not space out the commits of two-phase sinks; they still commit in
     * checkpoint order. @default 2
     */
    readonly maxConcurrent?: number;
    /** Lowest checkpoint id of this run (group mode: each owner epoch its own range). @default 1 */
    readonly firstId?: number;
  };
  readonly state?: {
    /** @default 'rocksdb' */
    readonly backend?: StateBackendName;
    /** Local working state (RocksDB). @default `<cdcflow home>/state`, like `checkpoints.dir` */
    readonly dir?: string;
    /**
     * Memory of each RocksDB instance (one per keyed operator subtask): block cache (8 MiB), write
     * buffers (4 MiB, two of them), open files (1000; each holds its index and filter). See
     * docs/state-at-scale.md for what else a job's memory holds.
     */
    readonly rocksdb?: RocksDbMemoryOptions;
  };
  /** Where to start: the latest checkpoint, a savepoint, or nothing. @default 'latest' */
  readonly restore?: RestoreSource | 'none';
  /** Serve /metrics, /healthz, /api/job and the REST API on this port. @default no server (or CDCFLOW_METRICS_PORT) */
  readonly metricsPort?: number;
  /** The HTTP server (REST API, /metrics); `port` wins over `metricsPort`. See runtime/rest/. */
  readonly rest?: {
    /** @default '127.0.0.1'; any other address needs `token` or `tokenFile` */
    readonly host?: string;
    /** 0: any free port. */
    readonly port?: number;
    /** Bearer token for mutating calls. @default a random one in `<dir>/<jobName>/rest-token` */
    readonly token?: string;
    readonly tokenFile?: string;
  };
  readonly restart?: {
    /**
     * Restarts from the latest checkpoint after consecutive failures before giving up (with the
     * defaults ~6 min of failing attempts, e.g. an outage that long); `Infinity` never gives up.
     * @default 10
     */
    readonly maxAttempts?: number;
    /** First delay; doubles each attempt up to maxDelayMs. @default 1000 */
    readonly initialDelayMs?: number;
    /** @default 30000 */
    readonly maxDelayMs?: number;
    /** An attempt that ran this long before failing resets the attempts and the delay: a new incident. @default 600000 (10 min) */
    readonly resetAfterMs?: number;
  };
  /** When `/healthz` answers 503 (see runtime/job-health.ts). */
  readonly health?: {
    /** Attempts failed in a row (no checkpoint completed in between). @default 3 */
    readonly unhealthyAfterFailures?: number;
    /** No checkpoint completed for this many checkpoint intervals. @default 60 */
    readonly unhealthyAfterCheckpointIntervals?: number;
  };
  /** Log lines (job lifecycle, checkpoints, restarts). @default info lines of `logger` */
  readonly log?: (line: string) => void;
  /** The job's structured log (pino). @default the process's logger (operators/logger.ts) with `job` bound */
  readonly logger?: Logger;
  /** Stop, signals and the one-instance lease (see README "Operating a job"). */
  readonly lifecycle?: {
    /** A stop (signal, `stop()`) that has not finished by then cancels the job. @default 30000 */
    readonly stopDeadlineMs?: number;
    /** SIGTERM/SIGINT stop the job with a final checkpoint. @default true (main thread) */
    readonly handleSignals?: boolean;
    /** Take over the job's lease although its holder cannot be proven dead (another host). @default false */
    readonly takeoverLease?: boolean;
  };
  /**
   * A start with no checkpoint normally refuses to roll back prepared sink transactions of this
   * job it finds (they may belong to a checkpoint in another directory). `true` discards them.
   * @default false
   */
  readonly discardSinkTransactions?: boolean;
  /** Service-level objectives: `/readyz`, `cdcflow_slo_*`, `slo` in `/api/job` (runtime/signals/slo.ts). @default none */
  readonly slo?: SloOptions;
  /**
   * Restore although an `at-least-once` sink with side effects committed past the restore point
   * (its records would be sent again; the job logs how many). CLI `--allow-replay`. @default false
   */
  readonly allowReplay?: boolean;
  /**
   * Subtasks per operator. Above 1, `execute()` runs each subtask in its own worker thread, every
   * one running this job module (see docs/parallel-execution.md). @default 1 (or CDCFLOW_PARALLELISM)
   */
  readonly parallelism?: number;
  /** The job module the worker threads run. @default the entry file (`process.argv[1]`) */
  readonly jobModule?: string | URL;
  /**
   * Records an operator or sink cannot handle (user code threw, state or the target refused the
   * value) — see docs/dead-letters.md. Sources have their own `deadLetterTopic` for decoding.
   */
  readonly deadLetters?: {
    /** @default `<jobName>.dlq` */
    readonly topic?: string;
    /** @default process.env.KAFKA_BROKERS ?? '127.0.0.1:19092' */
    readonly brokers?: readonly string[];
    /**
     * What a record that makes user code (map, filter, flatMap, process) throw does:
     * `dead-letter` it and go on, or `fail` the job at once with the record named (no restarts).
     * Sinks have their own policy (`onRefused`). @default 'dead-letter'
     */
    readonly onRecordError?: 'dead-letter' | 'fail';
    /** Replace the Kafka writer (tests, other targets); single-thread jobs only. @default a Kafka producer */
    readonly writer?: DeadLetterWriter;
  };
}

export type ResolvedOptions = {
  readonly jobName: string;
  readonly checkpointIntervalMs: number;
  /** The local checkpoint root; with an object store (`checkpointUrl`) the staging root beside it. */
  readonly checkpointDir: string;
  /** `s3://bucket/prefix` when checkpoints live in an object store (docs/object-storage.md). */
  readonly checkpointUrl: string | undefined;
  readonly checkpointTimeoutMs: number;
  readonly retain: number;
  readonly maxConcurrentCheckpoints: number;
  readonly firstCheckpointId: number | undefined;
  readonly stateBackend: StateBackendName;
  readonly stateDir: string;
  readonly stateRocksDb: RocksDbMemoryOptions;
  readonly restore: RestoreSource | 'none';
  readonly metricsPort: number | undefined;
  readonly rest: { readonly host: string; readonly token: string | undefined; readonly tokenFile: string | undefined };
  readonly maxAttempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly resetAfterMs: number;
  readonly unhealthyAfterFailures: number;
  readonly unhealthyAfterCheckpointIntervals: number;
  readonly log: (line: string) => void;
  readonly logger: Logger;
  readonly stopDeadlineMs: number;
  readonly handleSignals: boolean;
  readonly takeoverLease: boolean;
  readonly discardSinkTransactions: boolean;
  readonly slo: SloOptions;
  readonly allowReplay: boolean;
  readonly parallelism: number;
  readonly jobModule: string | undefined;
  readonly deadLetterTopic: string;
  /** Brokers of the job's dead-letter topic; undefined: the Kafka connection from the environment (TLS/SASL included). */
  readonly deadLetterBrokers: readonly string[] | undefined;
  readonly onRecordError: 'dead-letter' | 'fail';
  readonly deadLetterWriter: DeadLetterWriter | undefined;
};

/** Where a job's HTTP server listens: `rest.port`, else `metricsPort`, else CDCFLOW_METRICS_PORT; undefined: no server. */
export function httpPortOf(options: Pick<EnvironmentOptions, 'rest' | 'metricsPort'>): number | undefined {
  const envPort = process.env['CDCFLOW_METRICS_PORT'];
  return options.rest?.port ?? options.metricsPort ?? (envPort === undefined ? undefined : Number(envPort));
}

export function resolveOptions(options: EnvironmentOptions): ResolvedOptions {
  if (!/^[A-Za-z0-9_.-]+$/.test(options.jobName)) {
    throw new Error(
      `jobName '${options.jobName}' may use only letters, digits, '-', '_' and '.': it names folders and Kafka transactional ids`,
    );
  }
  // In a subtask worker every line carries the subtask (protocol.ts SubtaskInit).
  const init = workerData as { kind?: unknown; subtaskIndex?: unknown } | null | undefined;
  const subtask =
    init?.kind === 'cdcflow-subtask' && typeof init.subtaskIndex === 'number' ? init.subtaskIndex : undefined;
  const logger =
    options.logger ??
    (options.log === undefined
      ? loggerFor({ job: options.jobName, ...(subtask === undefined ? {} : { subtask }) })
      : lineSinkLogger(options.log, { job: options.jobName }));
  return {
    jobName: options.jobName,
    checkpointIntervalMs: options.checkpoints?.intervalMs ?? CHECKPOINT_DEFAULTS.intervalMs,
    ...checkpointRoots(options.checkpoints),
    checkpointTimeoutMs: options.checkpoints?.timeoutMs ?? CHECKPOINT_DEFAULTS.timeoutMs,
    retain: options.checkpoints?.retain ?? CHECKPOINT_DEFAULTS.retain,
    maxConcurrentCheckpoints: options.checkpoints?.maxConcurrent ?? JOB_DEFAULTS.maxConcurrentCheckpoints,
    firstCheckpointId: options.checkpoints?.firstId,
    stateBackend: options.state?.backend ?? JOB_DEFAULTS.stateBackend,
    stateDir: resolve(options.state?.dir ?? defaultStateDir()),
    stateRocksDb: options.state?.rocksdb ?? {},
    restore: options.restore ?? JOB_DEFAULTS.restore,
    metricsPort: httpPortOf(options),
    rest: {
      host: options.rest?.host ?? JOB_DEFAULTS.restHost,
      token: options.rest?.token,
      tokenFile: options.rest?.tokenFile,
    },
    maxAttempts: options.restart?.maxAttempts ?? 10,
    initialDelayMs: options.restart?.initialDelayMs ?? 1000,
    maxDelayMs: options.restart?.maxDelayMs ?? 30_000,
    resetAfterMs: options.restart?.resetAfterMs ?? 600_000,
    unhealthyAfterFailures: options.health?.unhealthyAfterFailures ?? 3,
    unhealthyAfterCheckpointIntervals: options.health?.unhealthyAfterCheckpointIntervals ?? 60,
    log: options.log ?? lineLogger(logger),
    logger,
    stopDeadlineMs: options.lifecycle?.stopDeadlineMs ?? JOB_DEFAULTS.stopDeadlineMs,
    handleSignals: options.lifecycle?.handleSignals ?? isMainThread,
    takeoverLease: options.lifecycle?.takeoverLease ?? JOB_DEFAULTS.takeoverLease,
    discardSinkTransactions: options.discardSinkTransactions ?? JOB_DEFAULTS.discardSinkTransactions,
    slo: options.slo ?? {},
    allowReplay: options.allowReplay ?? JOB_DEFAULTS.allowReplay,
    parallelism: resolveParallelism(options.parallelism),
    jobModule: options.jobModule === undefined ? undefined : String(options.jobModule),
    deadLetterTopic: options.deadLetters?.topic ?? `${options.jobName}.dlq`,
    deadLetterBrokers: options.deadLetters?.brokers,
    onRecordError: options.deadLetters?.onRecordError ?? 'dead-letter',
    deadLetterWriter: options.deadLetters?.writer,
  };
}

function resolveParallelism(option: number | undefined): number {
  const envValue = process.env['CDCFLOW_PARALLELISM'];
  const value = option ?? (envValue === undefined || envValue === '' ? JOB_DEFAULTS.parallelism : Number(envValue));
  if (!Number.isInteger(value) || value < 1 || value > DEFAULT_MAX_PARALLELISM) {
    throw new CdcflowError(
      `parallelism must be an integer in 1..${DEFAULT_MAX_PARALLELISM} (the number of key groups), got ${String(option ?? envValue)}: set the parallelism option or CDCFLOW_PARALLELISM`,
      { domain: 'user', retriable: false },
    );
  }
  return value;
}

/** `checkpoints.dir` as a local root, or an object-store URL with its local staging root. */
function checkpointRoots(checkpoints: EnvironmentOptions['checkpoints']): {
  checkpointDir: string;
  checkpointUrl: string | undefined;
} {
  const dir = checkpoints?.dir ?? defaultCheckpointRoot();
  validateCheckpointRoot(dir);
  if (isS3Url(dir))
    return {
      checkpointDir: resolve(checkpoints?.stagingDir ?? defaultCheckpointRoot()),
      checkpointUrl: dir.replace(/\/+$/, ''),
    };
  return { checkpointDir: localCheckpointPath(dir), checkpointUrl: undefined };
}
