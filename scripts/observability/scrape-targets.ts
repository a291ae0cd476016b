/**
 * Prometheus file-based service discovery from a checkpoint root: every job that registered its
 * REST address there (`<root>/<job>/rest.json`, runtime/rest/registration.ts) and whose process
 * may be alive becomes a target `host:port` labelled `cdcflow_job=<name>`.
 *   node --import tsx scripts/observability/scrape-targets.ts [--root DIR] [--out FILE] [--watch MS]
 * The stack's Prometheus (scripts/stack/services/prometheus.ts) runs it with --watch.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { jobsUnder } from '../../runtime/checkpoint-catalog.ts';
import { defaultCheckpointRoot } from '../../runtime/config/checkpoint-root.ts';
import { readRegistration, registrantMayBeAlive } from '../../runtime/rest/registration.ts';

export interface ScrapeTargetGroup {
  readonly targets: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

export async function scrapeTargets(root: string): Promise<ScrapeTargetGroup[]> {
  const groups: ScrapeTargetGroup[] = [];
  for (const job of await jobsUnder(root)) {
    const registration = await readRegistration(root, job).catch(() => undefined);
    if (registration === undefined || !registrantMayBeAlive(registration)) continue;
    groups.push({ targets: [new URL(registration.url).host], labels: { cdcflow_job: job } });
  }
  return groups;
}

/** Writes the targets atomically (Prometheus re-reads the file when it changes). */
export async function writeScrapeTargets(root: string, file: string): Promise<ScrapeTargetGroup[]> {
  const groups = await scrapeTargets(root);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, `${JSON.stringify(groups, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  return groups;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: { root: { type: 'string' }, out: { type: 'string' }, watch: { type: 'string' } },
  });
  const root = values.root ?? defaultCheckpointRoot();
  const out = values.out ?? 'cdcflow-targets.json';
  const once = () =>
    writeScrapeTargets(root, out).catch((error: unknown) => console.error(`scrape targets: ${String(error)}`));
  await once();
  if (values.watch !== undefined) setInterval(() => void once(), Number(values.watch));
}
