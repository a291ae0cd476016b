/**
 * What the runtime tests that run a small in-memory job share: an environment whose checkpoints
 * and state live under a test's temporary root, with no signal handlers and no log lines, and a
 * sink whose commits can be held (a stalled target) to move backlog and freshness signals.
 */
import { join } from 'node:path';
import { StreamEnvironment, type EnvironmentOptions, type SinkDefinition } from '../../runtime/index.ts';

/** `StreamEnvironment.create` for `<root>/<jobName>` with memory state under `<root>/state`; `options` add to or override that. */
export function quietEnvironment(
  root: string,
  jobName: string,
  options: Partial<Omit<EnvironmentOptions, 'jobName'>> = {},
): StreamEnvironment {
  return StreamEnvironment.create({
    jobName,
    state: { backend: 'memory', dir: join(root, 'state') },
    log: () => {},
    ...options,
    checkpoints: { dir: root, ...options.checkpoints },
    lifecycle: { handleSignals: false, ...options.lifecycle },
  });
}

export interface StallGate {
  /** While set, every checkpoint-complete notification waits for `release`. */
  stalled: boolean;
  release?: () => void;
}

/** A sink that commits at once unless `gate.stalled`; then its commit waits (the sink's backlog and freshness grow). */
export function stallableSink(
  gate: StallGate,
  declared: Pick<SinkDefinition<number>, 'replaySafety' | 'sideEffects'> = {},
): SinkDefinition<number> {
  return {
    name: 'stallable',
    kind: 'http',
    ...declared,
    createOperator: () => ({
      processBatch: () => undefined,
      notifyCheckpointComplete: async () => {
        if (gate.stalled) await new Promise<void>((resolve) => (gate.release = resolve));
      },
    }),
  };
}
