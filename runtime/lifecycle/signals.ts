/**
 * SIGTERM and SIGINT (what systemd, Kubernetes and Ctrl-C send) stop the job gracefully: a final
 * checkpoint, sink commits, then `execute()` returns and the process can exit 0. A second signal
 * while stopping cancels at once (exit code 130/143 as a shell reports it). Without these
 * handlers Node dies on the spot, leaving prepared transactions holding their row locks.
 */
import type { Logger } from 'pino';

export interface SignalTarget {
  stop(): Promise<unknown>;
  cancel(): void;
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
/** After a failed or overdue stop, how long closing may still take before the process exits anyway. */
export const FORCED_EXIT_GRACE_MS = 10_000;

/** Installs the handlers; returns their removal. */
export function handleStopSignals(target: SignalTarget, log: Logger): () => void {
  let received = 0;
  const handler = (signal: NodeJS.Signals) => {
    received += 1;
    if (received === 1) {
      log.info({ signal }, `${signal} received: stopping with a final checkpoint (send it again to cancel at once)`);
      target.stop().catch((error: unknown) => {
        log.error({ signal, err: error }, 'graceful stop failed: exiting with code 1');
        process.exitCode = 1;
        // The job was cancelled; if something still hangs (a commit that never answers), the
        // process must end anyway: the supervisor sent the signal to get it gone.
        setTimeout(() => process.exit(1), FORCED_EXIT_GRACE_MS).unref();
      });
      return;
    }
    log.warn({ signal }, `${signal} received again: cancelling without a final checkpoint`);
    target.cancel();
    process.exitCode = signal === 'SIGINT' ? 130 : 143;
  };
  for (const signal of SIGNALS) process.on(signal, handler);
  return () => {
    for (const signal of SIGNALS) process.off(signal, handler);
  };
}
