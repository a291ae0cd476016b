// Runs before `npm test` and `npm run demo` so that on a fresh clone those are the only two
// commands anyone types: installs the locked npm dependencies when node_modules is missing or stale.
import { execSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

const lock = 'package-lock.json';
const marker = 'node_modules/.package-lock.json';
const stale = !existsSync(marker) || (existsSync(lock) && statSync(lock).mtimeMs > statSync(marker).mtimeMs + 1000);
if (stale) {
  console.log('[cdcflow] installing npm dependencies (npm ci) ...');
  try {
    execSync(existsSync(lock) ? 'npm ci --no-audit --no-fund' : 'npm install --no-audit --no-fund', {
      stdio: 'inherit',
    });
  } catch {
    // npm 11 can refuse a lock it wrote itself (missing optional bindings of other platforms).
    execSync('npm install --no-audit --no-fund', { stdio: 'inherit' });
  }
}

// The kafkajs fix (scripts/patch-kafkajs.mjs) also when node_modules came from elsewhere (npm ci --ignore-scripts, a cache).
const { patchKafkajs, patchKafkajsStaticMembership } = await import('./patch-kafkajs.mjs');
const outcome = patchKafkajs();
if (outcome.startsWith('patched') || outcome.startsWith('unknown'))
  console.log(`[cdcflow] kafkajs aborted-transaction filter: ${outcome}`);
// Static group membership (group mode); throws when the installed kafkajs is not the one it edits.
const membership = patchKafkajsStaticMembership();
if (membership.includes(': patched')) console.log(`[cdcflow] kafkajs static membership: ${membership}`);
