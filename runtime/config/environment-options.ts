import type { RestoreSource } from '../../checkpoints/index.ts';
import type { EnvironmentOptions } from '../job-options.ts';
import type { JobConfig, RestoreConfig } from './config-schema.ts';

/** `StreamEnvironment.create` options from a loaded configuration; `extra` adds what a config file cannot hold (a log function). */
export function environmentOptions(
  config: JobConfig<unknown>,
  extra: Partial<EnvironmentOptions> = {},
): EnvironmentOptions {
  const { rest } = config;
  return {
    jobName: config.name,
    parallelism: config.parallelism,
    restore: restoreSource(config.restore),
    checkpoints: {
      dir: config.checkpoints.root,
      ...(config.checkpoints.stagingDir === undefined ? {} : { stagingDir: config.checkpoints.stagingDir }),
      intervalMs: config.checkpoints.intervalMs,
      timeoutMs: config.checkpoints.timeoutMs,
      retain: config.checkpoints.retain,
      ...(config.checkpoints.maxConcurrent === undefined ? {} : { maxConcurrent: config.checkpoints.maxConcurrent }),
    },
    state: { backend: config.state.backend, dir: config.state.dir },
    lifecycle: { stopDeadlineMs: config.lifecycle.stopDeadlineMs, takeoverLease: config.lifecycle.takeoverLease },
    discardSinkTransactions: config.discardSinkTransactions,
    allowReplay: config.allowReplay,
    slo: stripUndefined(config.slo),
    rest: {
      host: rest.host,
      ...(rest.enabled ? { port: rest.port } : {}),
      ...(rest.token === undefined ? {} : { token: rest.token }),
      ...(rest.tokenFile === undefined ? {} : { tokenFile: rest.tokenFile }),
    },
    ...extra,
  };
}

export function restoreSource(restore: RestoreConfig): RestoreSource | 'none' {
  if (restore === 'latest' || restore === 'none') return restore;
  if ('savepoint' in restore)
    return restore.savepoint.includes('/') ? { path: restore.savepoint } : { savepoint: restore.savepoint };
  return typeof restore.checkpoint === 'number' ? { checkpointId: restore.checkpoint } : { path: restore.checkpoint };
}

/** The SLO options without the fields the configuration left out (exactOptionalPropertyTypes). */
function stripUndefined<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}
