/**
 * An in-memory source of 0, 1, 2, … for runtime tests that need a job that keeps running: one
 * split, `batch` values per poll every `pollDelayMs`, its position the next value (a restore
 * resumes there). With `limit` it goes idle after that many values instead of ending (still an
 * unbounded source).
 */
import type { SourceDefinition, SourceReader } from '../../operators/sources/source.ts';

export interface CountingSourceOptions {
  /** Values per poll. @default 10 */
  readonly batch?: number;
  /** Wait before each poll answers. @default 10 */
  readonly pollDelayMs?: number;
  /** After this many values every poll is idle. @default none: endless */
  readonly limit?: number;
  /** `'wall-clock'` stamps each record with `Date.now()` as its source commit time (freshness signals). @default none */
  readonly timestamps?: 'wall-clock';
  /** The split's name in positions. @default '0' */
  readonly split?: string;
  /** The first `failFirst` polls (over all attempts of the job) throw: a source that breaks, then recovers. @default 0 */
  readonly failFirst?: number;
}

export function countingSource(options: CountingSourceOptions = {}): SourceDefinition<number> {
  const { batch = 10, pollDelayMs = 10, limit = Infinity, split = '0', failFirst = 0 } = options;
  const failures = { count: 0 };
  return {
    name: 'counting',
    splitOwner: () => 0,
    createReader: (): SourceReader<number> => {
      let next = 0;
      return {
        open: (restored) => {
          next = Number(restored?.positions[0]?.position ?? 0);
          return Promise.resolve();
        },
        poll: async (maxWaitMs) => {
          if (failures.count < failFirst) {
            failures.count += 1;
            throw new Error('source broke (test)');
          }
          if (next >= limit) {
            await new Promise((r) => setTimeout(r, Math.min(maxWaitMs, 50)));
            return 'idle';
          }
          await new Promise((r) => setTimeout(r, pollDelayMs));
          const values = Array.from({ length: Math.min(batch, limit - next) }, (_, i) => next + i);
          next += values.length;
          const timestamp = options.timestamps === 'wall-clock' ? Date.now() : undefined;
          return { records: values.map((value) => ({ value, timestamp })), split, bytes: values.length * 8 };
        },
        snapshot: () => ({ positions: [{ split, position: String(next) }] }),
        close: () => Promise.resolve(),
      };
    },
  };
}
