/**
 * The SLO options (configuration `slo`, `StreamEnvironment.create({ slo })`): one schema, and the
 * option type derived from it, so the configuration and the API cannot drift apart.
 */
import { z } from 'zod';
import { JOB_DEFAULTS } from '../config/defaults.ts';

const limit = z.number().positive();

export const sloSchema = z.strictObject({
  /** p99 of source commit → committed in the sink (seconds), one limit for every sink or per sink uid. */
  sinkFreshnessP99Seconds: z.union([limit, z.record(z.string(), limit)]).optional(),
  /** Seconds since the last completed checkpoint. */
  maxCheckpointAgeSeconds: limit.optional(),
  /** Seconds without a fetch that returned data, one limit for every topic or per topic. */
  maxSilenceSeconds: z.union([limit, z.record(z.string(), limit)]).optional(),
  /** The window of the freshness p99. @default 300 */
  windowSeconds: limit.default(JOB_DEFAULTS.sloWindowSeconds),
});

/** What `slo` accepts (every field optional). */
export type SloOptions = Readonly<z.input<typeof sloSchema>>;
