/**
 * The job's defaults, set once: `StreamEnvironment.create` options (job-options.ts) and the
 * configuration schema (config-schema.ts) both fill missing fields from here. Checkpoint
 * defaults live with the coordinator (checkpoints/coordinator-options.ts) and are re-exported.
 */
import { CHECKPOINT_DEFAULTS } from '../../checkpoints/index.ts';

export { CHECKPOINT_DEFAULTS };

export const JOB_DEFAULTS = {
  parallelism: 1,
  restore: 'latest',
  allowReplay: false,
  discardSinkTransactions: false,
  stateBackend: 'rocksdb',
  restHost: '127.0.0.1',
  /** Checkpoints in flight at once for jobs (the coordinator alone defaults to 1). */
  maxConcurrentCheckpoints: 2,
  stopDeadlineMs: 30_000,
  takeoverLease: false,
  /** Window of the SLOs' freshness p99 (runtime/signals/slo.ts). */
  sloWindowSeconds: 300,
} as const;
