/**
 * `cdcflow init DIR`: a new project that depends on cdcflow — package.json (`type: module`),
 * tsconfig, a job (Debezium orders → upsert → Postgres two-phase, and revenue windows with a
 * late side output), its configuration, a unit test on `cdcflow/testing`, and a docker-compose.yml
 * for the services. The files are the templates in ./template (plain text, `{{name}}` filled in).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError } from './cli-error.ts';

export interface InitOptions {
  /** The version range the project depends on. @default `^<this cdcflow's version>` */
  readonly cdcflowVersion?: string;
  readonly print: (line: string) => void;
}

/** Template files are stored with a `.txt` suffix so no tool compiles or lints them here. */
const TEMPLATE_DIR = fileURLToPath(new URL('./template/', import.meta.url));

export function initProject(dir: string, o: InitOptions): string[] {
  const target = resolve(dir);
  if (existsSync(target) && readdirSync(target).length > 0)
    throw new CliError(`${target} exists and is not empty: choose a new directory`);
  const name = basename(target)
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-');
  const version = o.cdcflowVersion ?? `^${ownVersion()}`;
  const written: string[] = [];
  for (const file of readdirSync(TEMPLATE_DIR, { recursive: true, withFileTypes: true })) {
    if (!file.isFile() || !file.name.endsWith('.txt')) continue;
    const from = join(file.parentPath, file.name);
    const relative = from
      .slice(TEMPLATE_DIR.length)
      .replace(/\.txt$/, '')
      .replace(/(^|\/)_/, '$1.');
    const to = join(target, relative);
    mkdirSync(join(to, '..'), { recursive: true });
    writeFileSync(
      to,
      readFileSync(from, 'utf8').replaceAll('{{name}}', name).replaceAll('{{cdcflowVersion}}', version),
    );
    written.push(relative);
  }
  o.print(
    `created ${target} (${written.length} files). Next:\n  cd ${dir}\n  npm install\n  npm test                 # the job's unit test, no services needed\n  docker compose up -d     # Kafka, Postgres, Debezium (or point the config at yours)\n  npx cdcflow run jobs/orders.ts --config cdcflow.config.json`,
  );
  return written.sort();
}

function ownVersion(): string {
  for (const up of ['../../package.json', '../../../package.json']) {
    const file = fileURLToPath(new URL(up, import.meta.url));
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'cdcflow' && pkg.version !== undefined) return pkg.version;
  }
  return '0.1.0';
}
