#!/usr/bin/env node
// Builds cdcflow's own RocksDB binding (state/native, experimental: `state.rocksdb.binding:
// 'native'`) with node-gyp against the system's librocksdb and Node's installed headers, so no
// download is needed. Skips the build when the addon is newer than its sources.
// `--if-possible`: print why it cannot be built and exit 0 (the `rocksdb` npm binding still works).
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'state', 'native');
const output = join(dir, 'build', 'Release', 'cdcflow_rocksdb.node');
const sources = ['cdcflow-rocksdb.cc', 'binding.gyp'].map((f) => join(dir, f));
const optional = process.argv.includes('--if-possible');
const force = process.argv.includes('--force');

function fail(message) {
  console.error(`[cdcflow] native RocksDB binding not built: ${message}`);
  process.exit(optional ? 0 : 1);
}

if (!force && existsSync(output)) {
  const built = statSync(output).mtimeMs;
  if (sources.every((f) => statSync(f).mtimeMs <= built)) process.exit(0);
}
if (!existsSync('/usr/include/rocksdb/utilities/checkpoint.h')) {
  fail(
    'RocksDB headers are missing; install them with `apt-get install -y librocksdb-dev` (Debian/Ubuntu), then run `npm run build:native`.',
  );
}
const nodeDir = process.env.CDCFLOW_NODEDIR ?? dirname(dirname(process.execPath));
if (!existsSync(join(nodeDir, 'include', 'node', 'node_api.h'))) {
  fail(
    `Node's headers are not under ${nodeDir}/include/node; set CDCFLOW_NODEDIR to the directory that holds include/node.`,
  );
}
let gyp;
try {
  gyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
} catch {
  fail('node-gyp is not installed (it is a devDependency: run `npm ci`).');
}
try {
  execFileSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodeDir}`, '--loglevel=warn'], {
    cwd: dir,
    stdio: 'inherit',
  });
} catch (err) {
  fail(`node-gyp failed (${err.message}); see its output above.`);
}
console.log(`[cdcflow] native RocksDB binding built: ${output}`);
