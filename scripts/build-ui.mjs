// Bundles the web UI (runtime/ui/web/: Preact, uPlot, dagre) into runtime/ui/dist/, which the job's HTTP
// server serves at `/`. Runs on `npm ci` (prepare), before `npm test` and `npm run demo`, and as
// `npm run build:ui`; nothing is fetched at run time (no CDN). Skips the build when the bundle is
// newer than every source file (`--force` builds anyway).
import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'runtime', 'ui', 'dist');

function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

export async function buildUi({ force = false } = {}) {
  const bundle = join(out, 'app.js');
  const sources = Math.max(
    newest(join(root, 'runtime', 'ui', 'web')),
    statSync(join(root, 'runtime', 'ui', 'overview-types.ts')).mtimeMs,
    statSync(join(root, 'package-lock.json')).mtimeMs,
  );
  if (!force && existsSync(bundle) && existsSync(join(out, 'index.html')) && statSync(bundle).mtimeMs >= sources)
    return { built: false, dir: out };
  mkdirSync(out, { recursive: true });
  const result = await build({
    entryPoints: { app: join(root, 'runtime', 'ui', 'web', 'src', 'main.tsx') },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome110', 'firefox110', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir: out,
    legalComments: 'linked',
    metafile: true,
    logLevel: 'warning',
  });
  copyFileSync(join(root, 'runtime', 'ui', 'web', 'index.html'), join(out, 'index.html'));
  const bytes = Object.entries(result.metafile.outputs).map(
    ([file, o]) => `${file.split('/').pop()} ${(o.bytes / 1024).toFixed(0)} KiB`,
  );
  return { built: true, dir: out, bytes };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { built, bytes } = await buildUi({ force: process.argv.includes('--force') });
  if (built) console.log(`[cdcflow] web UI built into runtime/ui/dist (${bytes.join(', ')})`);
}
