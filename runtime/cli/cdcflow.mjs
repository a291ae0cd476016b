#!/usr/bin/env node
// The `cdcflow` command. Installed from npm it runs the compiled CLI (dist/); in a checkout of
// the repository (no dist/ built) it registers tsx's loader and runs the TypeScript sources.
// Either way, jobs started by `cdcflow run job.ts` load through tsx (runtime/cli/run-job.ts).
import { existsSync } from 'node:fs';

const compiled = new URL('../../dist/runtime/cli/main.js', import.meta.url);
const sources = new URL('./main.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(sources.href);
} else {
  await import(compiled.href);
}
