export { cdcflowHome, defaultCheckpointRoot, defaultStateDir } from './checkpoint-root.ts';
export { ConfigError } from './config-error.ts';
export {
  coreConfigSchema,
  jobConfigSchema,
  JOB_NAME_PATTERN,
  type CoreConfig,
  type JobConfig,
  type RestoreConfig,
} from './config-schema.ts';
export { environmentOptions, restoreSource } from './environment-options.ts';
export { loadJobConfig, type LoadJobConfigOptions } from './job-config.ts';
export { JOB_FLAGS, parseJobFlags, type JobFlagSpec } from './job-flags.ts';
