/**
 * Prometheus (Debian's `prometheus` package) on 127.0.0.1:19090, scraping every running cdcflow
 * job of the default checkpoint root (CDCFLOW_CHECKPOINT_DIR or .cdcflow/checkpoints) through
 * file-based service discovery: a small watcher (scripts/observability/scrape-targets.ts) rewrites
 * the targets file from the jobs' REST registrations every 5 s. Rules:
 * scripts/observability/cdcflow-alerts.yml. No Alertmanager: alerts are visible at /alerts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCheckpointRoot } from '../../../runtime/config/checkpoint-root.ts';
import { prometheusConfig } from '../../observability/prometheus-config.ts';
import { ensureDebianPackage } from '../debian.ts';
import { stackPorts } from '../endpoints.ts';
import { stackPaths } from '../paths.ts';
import { startDaemon, stopDaemon } from '../process.ts';
import type { StackService } from '../service.ts';

const port = stackPorts.prometheus;
const observability = resolve(fileURLToPath(new URL('../../observability/', import.meta.url)));

export const prometheusService: StackService = {
  name: 'prometheus',
  port,
  startTimeoutMs: 30_000,
  install: () => ensureDebianPackage('prometheus', 'prometheus'),
  start: async () => {
    const dir = stackPaths.data('prometheus');
    const targets = join(dir, 'targets', 'cdcflow.json');
    mkdirSync(join(dir, 'tsdb'), { recursive: true });
    mkdirSync(join(dir, 'targets'), { recursive: true });
    const config = join(dir, 'prometheus.yml');
    writeFileSync(
      config,
      prometheusConfig({
        targetFiles: [join(dir, 'targets', '*.json')],
        ruleFiles: [join(observability, 'cdcflow-alerts.yml')],
        scrapeInterval: '5s',
      }),
    );
    startDaemon({
      service: 'prometheus-targets',
      command: process.execPath,
      args: [
        '--import',
        'tsx',
        join(observability, 'scrape-targets.ts'),
        '--root',
        defaultCheckpointRoot(),
        '--out',
        targets,
        '--watch',
        '5000',
      ],
      cwd: resolve(observability, '../..'),
    });
    startDaemon({
      service: 'prometheus',
      command: 'prometheus',
      args: [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=2d',
      ],
    });
  },
  ready: async () => {
    const response = await fetch(`http://127.0.0.1:${port}/-/ready`).catch(() => undefined);
    return response?.ok === true;
  },
  stop: async () => {
    await stopDaemon('prometheus-targets');
    await stopDaemon('prometheus');
  },
};
