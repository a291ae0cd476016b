/**
 * One service of the development stack. `up` calls install → start → ready (polled until
 * `startTimeoutMs`) → provision; every step is idempotent so a second `up` is fast.
 */
export interface StackService {
  readonly name: string;
  /** The port clients use; named in every error. */
  readonly port: number;
  readonly startTimeoutMs: number;
  /**
   * Nice to have: if it cannot be installed or started, `up` logs why and goes on (its tests skip)
   * instead of failing the whole stack.
   */
  readonly optional?: boolean;
  /** Services that must answer before this one starts (e.g. Kafka Connect needs Kafka and Postgres). */
  readonly dependsOn?: readonly string[];
  /** Fetches binaries and prepares the data folder if missing. */
  install(): Promise<void>;
  /** Spawns the service detached (see startDaemon) and returns without waiting. */
  start(): Promise<void>;
  /** True when the service answers a real request (not merely an open port). */
  ready(): Promise<boolean>;
  /** Creates users, databases and settings the project expects, after the first readiness. */
  provision?(): Promise<void>;
  /** Stops it; default: TERM then KILL the process recorded in the pid file. */
  stop?(): Promise<void>;
}
