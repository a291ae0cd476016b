/**
 * The alert rules in scripts/observability/ checked and unit-tested by Prometheus's own
 * `promtool` (Debian package `prometheus`; installed by .ci/run). Skipped, saying so, only where
 * promtool is missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = join(import.meta.dirname, '../../../scripts/observability');
const promtool = spawnSync('promtool', ['--version']).status === 0;
if (!promtool)
  console.warn('alert-rules.test.ts: SKIPPED — promtool not found (apt-get install prometheus; .ci/run installs it)');

describe.skipIf(!promtool)('Prometheus alert rules (promtool)', () => {
  it('are valid rules', () => {
    const out = execFileSync('promtool', ['check', 'rules', join(dir, 'cdcflow-alerts.yml')], { encoding: 'utf8' });
    expect(out).toContain('SUCCESS');
  });

  it('pass their unit tests (cdcflow-alerts.test.yml)', () => {
    const run = spawnSync('promtool', ['test', 'rules', join(dir, 'cdcflow-alerts.test.yml')], { encoding: 'utf8' });
    expect(run.stdout + run.stderr).toContain('SUCCESS');
    expect(run.status).toBe(0);
  });

  it('cover every on-call signal the job exports', () => {
    const rules = readFileSync(join(dir, 'cdcflow-alerts.yml'), 'utf8');
    for (const metric of [
      'cdcflow_slo_ok',
      'cdcflow_sink_backlog_records',
      'cdcflow_sink_uncommitted_age_seconds',
      'cdcflow_sink_freshness_seconds_bucket',
      'cdcflow_sink_info',
      'cdcflow_last_checkpoint_age_seconds',
      'cdcflow_checkpoints_total',
      'cdcflow_job_restarts_total',
      'cdcflow_job_healthy',
      'cdcflow_source_silence_seconds',
      'cdcflow_source_catch_up_seconds',
      'cdcflow_source_lag_records',
      'cdcflow_dead_letters_total',
      'cdcflow_late_events_total',
    ]) {
      expect(rules, metric).toContain(metric);
    }
  });
});

describe('Grafana dashboard', () => {
  it('is JSON whose panels query the on-call metrics', () => {
    const dashboard = JSON.parse(readFileSync(join(dir, 'cdcflow-dashboard.json'), 'utf8')) as {
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    const exprs = dashboard.panels.flatMap((p) => p.targets?.map((t) => t.expr) ?? []).join('\n');
    for (const metric of [
      'cdcflow_sink_freshness_seconds_bucket',
      'cdcflow_sink_backlog_records',
      'cdcflow_source_lag_records',
      'cdcflow_source_catch_up_seconds',
      'cdcflow_source_silence_seconds',
      'cdcflow_slo_ok',
      'cdcflow_dead_letters_total',
      'cdcflow_last_checkpoint_age_seconds',
    ]) {
      expect(exprs, metric).toContain(metric);
    }
  });
});
