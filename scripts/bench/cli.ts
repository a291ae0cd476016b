/**
 * npm run bench -- <name> [flags]
 *   upsert  the reference projection job on the real Kafka vs the raw consume ceiling (upsert-bench.ts)
 *   windows the reference revenue windows job on the real Kafka vs the same ceiling, checked against its oracle (windows-bench.ts)
 *   decode  JSON and Avro decode rate on one core (decode-bench.ts)
 *   state   RocksDB keyed-state and snapshot micro-benchmark (state-bench.ts)
 *   state-scale  preset L at the state layer: checkpoints at size, SIGKILL recovery, peak RSS (state-scale-bench.ts)
 *   harness the projection job in-process over an in-memory fetcher: the framework's cost per event (harness-bench.ts)
 *   sinks   the projection into every sink: throughput, and freshness at an offered rate (sinks-bench.ts)
 *   compare the reference jobs on cdcflow, Flink, Kafka Streams and Quix Streams, one table with ratios (compare-bench.ts)
 *   bad-records the projection into Postgres over a clean topic and over one mixed with the malformed-input corpus (bad-records-bench.ts)
 *   clients the raw consume ceiling of kafkajs against @platformatic/kafka and (optional, built on demand) @confluentinc/kafka-javascript, interleaved (consume-clients-bench.ts)
 *   scale   group mode: 1, 2, 3 processes of the projection into Postgres, CPU, and failover time (scale-bench.ts)
 * Flags go to the chosen benchmark, e.g. `npm run bench -- upsert --events 100000 --runs 1`.
 */
const benches: Record<string, string> = {
  upsert: './upsert-bench.ts',
  windows: './windows-bench.ts',
  decode: './decode-bench.ts',
  state: './state-bench.ts',
  'state-scale': './state-scale-bench.ts',
  harness: './harness-bench.ts',
  sinks: './sinks-bench.ts',
  'bad-records': './bad-records-bench.ts',
  compare: './compare-bench.ts',
  clients: './consume-clients-bench.ts',
  scale: './scale-bench.ts',
};

const name = process.argv[2];
const module = name === undefined ? undefined : benches[name];
if (module === undefined) {
  console.error(
    `usage: npm run bench -- <${Object.keys(benches).join('|')}> [flags]${name === undefined ? '' : `\nunknown benchmark '${name}'`}`,
  );
  process.exitCode = 2;
} else {
  // Each benchmark reads its own flags from process.argv, as when it is run directly.
  process.argv.splice(2, 1);
  await import(module);
}
