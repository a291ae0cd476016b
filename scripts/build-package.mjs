// `npm run build` (and `npm pack`): the engine layers compiled to dist/ with declarations, so a
// project that installs cdcflow type-checks against .d.ts files under its own tsconfig and runs
// plain JavaScript. tsc rewrites relative `.ts` specifiers in the JavaScript it emits
// (rewriteRelativeImportExtensions) but keeps them in declarations; they are rewritten here, so
// consumers never need `allowImportingTsExtensions`.
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const root = new URL('..', import.meta.url).pathname;
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'scripts/tsconfig.build.json')], { stdio: 'inherit' });

let rewritten = 0;
for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
  const file = join(entry.parentPath ?? entry.path, entry.name);
  const text = readFileSync(file, 'utf8');
  const fixed = text.replace(
    /((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]+?)\.ts(['"])/g,
    (_m, head, path, tail) => `${head}${path}.js${tail}`,
  );
  if (fixed !== text) {
    writeFileSync(file, fixed);
    rewritten += 1;
  }
}
// `cdcflow init` reads its template files next to the compiled command; the job's HTTP server
// serves the web UI's bundle next to its compiled routes (runtime/ui/dist, built by build-ui.mjs).
cpSync(join(root, 'runtime/cli/template'), join(dist, 'runtime/cli/template'), { recursive: true });
const { buildUi } = await import('./build-ui.mjs');
await buildUi();
cpSync(join(root, 'runtime/ui/dist'), join(dist, 'runtime/ui/dist'), { recursive: true });
console.log(`[cdcflow] built dist/ (${rewritten} declaration files had .ts specifiers rewritten)`);
