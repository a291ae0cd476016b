/**
 * V8 flags a job process starts with (`cdcflow run`, the benchmarks' job children).
 *
 * `--max-semi-space-size=32` (MiB; Node 20's default is 16): a job keeps a whole batch of decoded
 * events (~800 × 1.3 KB plus their row objects) alive across the awaits of one batch (RocksDB
 * reads and writes, the sink's flush), so with the default young generation much of it survives
 * two scavenges, is promoted, and dies in the old generation, where it costs a mark-compact. A
 * larger young generation lets it die young. Measured on the upsert harness (docs/performance.md):
 * half as many scavenges; job-thread CPU per event −4 to −17 % in five of six interleaved rounds
 * on a loaded machine (one unchanged), process CPU likewise (GC helper threads). It only takes
 * effect as a process flag (V8 sizes the heap at start-up; `v8.setFlagsFromString` later does
 * nothing), so a job started by hand needs `NODE_OPTIONS=--max-semi-space-size=32`. Costs up to
 * 3 × 32 MiB more young-generation memory per isolate (main thread and each subtask worker).
 */
export const JOB_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32'];

/** `JOB_NODE_FLAGS` minus those the user already set (in NODE_OPTIONS or the given argv). */
export function jobNodeFlags(
  nodeOptions: string | undefined = process.env['NODE_OPTIONS'],
  execArgv: readonly string[] = process.execArgv,
): string[] {
  const given = [...(nodeOptions ?? '').split(/\s+/), ...execArgv].map((flag) => flag.split('=')[0]);
  return JOB_NODE_FLAGS.filter((flag) => !given.includes(flag.split('=')[0]));
}
