/**
 * The Prometheus configuration for cdcflow jobs: scrape every target of the file-based discovery
 * file(s) (scrape-targets.ts writes them from a checkpoint root) with `honor_labels` (the jobs'
 * own `job` label names the cdcflow job; the scrape job is `cdcflow`), and evaluate the alert rules.
 */
export interface PrometheusConfigOptions {
  readonly targetFiles: readonly string[];
  readonly ruleFiles: readonly string[];
  /** @default '15s' */
  readonly scrapeInterval?: string;
  /** @default the scrape interval */
  readonly evaluationInterval?: string;
}

/** As YAML (JSON is valid YAML, which Prometheus reads). */
export function prometheusConfig(o: PrometheusConfigOptions): string {
  const scrape = o.scrapeInterval ?? '15s';
  return JSON.stringify(
    {
      global: { scrape_interval: scrape, evaluation_interval: o.evaluationInterval ?? scrape },
      rule_files: o.ruleFiles,
      scrape_configs: [
        {
          job_name: 'cdcflow',
          honor_labels: true,
          metrics_path: '/metrics',
          file_sd_configs: [{ files: o.targetFiles, refresh_interval: scrape }],
        },
      ],
    },
    null,
    2,
  );
}
