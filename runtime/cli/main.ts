/**
 * The `cdcflow` command line (bin/cdcflow.mjs runs it through tsx). `run` starts a job file in
 * the foreground; the other commands find jobs through the checkpoint root and talk to them over
 * their REST API (runtime/rest/). See README "Operating a job" and docs/cli.md.
 */
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { JOB_FLAGS } from '../config/index.ts';
import { CdcflowError } from '../../state/errors.ts';
import { cliContext, type CliOptions } from './cli-context.ts';
import { CliError } from './cli-error.ts';
import { inspectJobCheckpoint, listJobCheckpoints } from './checkpoint-commands.ts';
import { cancelJob, jobInfo, listJobs, stopJob, takeSavepoint } from './job-commands.ts';
import { reconcile, type ReconcileFlags } from './reconcile-command.ts';
import { rescaleJob } from './rescale.ts';
import { initProject } from './init-project.ts';
import { jobArgs, runJobFile } from './run-job.ts';

const program = new Command('cdcflow')
  .description('Run and operate cdcflow jobs')
  .showHelpAfterError()
  .configureHelp({ sortSubcommands: false });

/** Where jobs register and keep checkpoints: every command but run takes these. */
function withRoot(command: Command): Command {
  return command
    .option(
      '--checkpoint-root <DIR>',
      'checkpoint root (default: CDCFLOW_CHECKPOINT_DIR, the --config file, then $CDCFLOW_HOME/checkpoints or ~/.local/state/cdcflow/checkpoints)',
    )
    .option('--config <FILE>', 'JSON configuration file to read the checkpoint root and REST token from')
    .option('--json', 'print JSON instead of text');
}

const ctxOf = (command: Command) => cliContext(command.opts<CliOptions>());

program
  .command('init')
  .description(
    'create a new project that depends on cdcflow: a job, its config, a unit test on cdcflow/testing, docker-compose.yml',
  )
  .argument('<DIR>', 'directory to create (must be new or empty)')
  .option('--cdcflow-version <RANGE>', 'the cdcflow version range the project depends on (default: this version)')
  .action((dir: string, options: { cdcflowVersion?: string }) => {
    initProject(dir, {
      print: (line) => console.log(line),
      ...(options.cdcflowVersion === undefined ? {} : { cdcflowVersion: options.cdcflowVersion }),
    });
  });

const run = program
  .command('run')
  .description('run a job file in the foreground (it registers its REST API in the checkpoint root)')
  .argument('<JOB>', 'job file, e.g. jobs/orders-to-postgres.ts');
for (const spec of JOB_FLAGS) {
  const option = new Option(
    `--${spec.flag}${spec.type === 'string' ? ` <${spec.value ?? 'VALUE'}>` : ''}`,
    spec.description,
  );
  run.addOption(
    spec.multiple === true
      ? option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value])
      : option,
  );
}
run.action(async (job: string, options: Record<string, unknown>) => {
  process.exitCode = await runJobFile(resolve(job), jobArgs(options));
});

withRoot(
  program
    .command('list')
    .description('jobs under the checkpoint root: state, parallelism, last checkpoint, REST address'),
).action(async (_options, command: Command) => listJobs(ctxOf(command)));

withRoot(
  program
    .command('info')
    .description('a running job: state, plan (operators, uids, parallelism), last checkpoint, exceptions')
    .argument('<JOB>', 'job name'),
).action(async (job: string, _options, command: Command) => jobInfo(ctxOf(command), job));

withRoot(
  program
    .command('savepoint')
    .description('take a savepoint of a running job')
    .argument('<JOB>', 'job name')
    .option('--name <NAME>', 'savepoint name (default: its checkpoint id)'),
).action(async (job: string, options: { name?: string }, command: Command) =>
  takeSavepoint(ctxOf(command), job, options.name),
);

withRoot(
  program
    .command('stop')
    .description('stop a running job gracefully: a final checkpoint (or savepoint), sinks commit')
    .argument('<JOB>', 'job name')
    .option('--savepoint', 'end with a savepoint')
    .option('--name <NAME>', 'name of the final savepoint (implies --savepoint)'),
).action(
  async (job: string, options: { savepoint?: boolean; name?: string }, command: Command) =>
    void (await stopJob(ctxOf(command), job, options)),
);

withRoot(
  program
    .command('cancel')
    .description('cancel a running job: no final checkpoint; the next start restores the last completed one')
    .argument('<JOB>', 'job name'),
).action(async (job: string, _options, command: Command) => cancelJob(ctxOf(command), job));

const checkpoints = program
  .command('checkpoints')
  .description("a job's checkpoints and savepoints (read from the checkpoint root; the job need not run)");
withRoot(checkpoints.command('list').argument('<JOB>', 'job name')).action(
  async (job: string, _options, command: Command) => listJobCheckpoints(ctxOf(command), job),
);
withRoot(
  checkpoints
    .command('inspect')
    .argument('<JOB>', 'job name')
    .argument('<ID>', 'checkpoint id, savepoint name, or path'),
).action(async (job: string, id: string, _options, command: Command) => inspectJobCheckpoint(ctxOf(command), job, id));

withRoot(
  program
    .command('rescale')
    .description(
      'savepoint and stop a running job, then run it again at parallelism N from that savepoint (in the foreground)',
    )
    .argument('<JOB>', 'job name')
    .argument('<N>', 'new parallelism'),
).action(async (job: string, n: string, _options, command: Command) => {
  process.exitCode = await rescaleJob(ctxOf(command), job, n);
});

withRoot(
  program
    .command('reconcile')
    .description(
      'compare a sink table with its source table by key and every column (exit 0 equal, 1 different, 2 could not compare)',
    )
    .requiredOption('--source-table <TABLE>', 'source table')
    .requiredOption('--sink-table <TABLE>', 'sink table')
    .option('--source <URL>', 'source Postgres URL (default CDCFLOW_SOURCE_DATABASE_URL, then DATABASE_URL)')
    .option('--sink <URL>', 'sink Postgres URL (default: the source URL)')
    .option('--key <COLUMNS>', 'key columns, comma-separated (default: the source primary key)')
    .option('--columns <COLUMNS>', 'columns to compare (default: every source column)')
    .option('--ignore <COLUMNS>', 'columns to leave out')
    .option('--source-where <SQL>', 'filter source rows')
    .option('--sink-where <SQL>', 'filter sink rows (e.g. "NOT deleted" for an idempotent-mode sink)')
    .option('--chunk <N>', 'rows per query')
    .option('--samples <N>', 'samples kept per category'),
).action(async (options: ReconcileFlags, command: Command) => {
  process.exitCode = await reconcile(ctxOf(command), options);
});

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Our own errors say what to do; anything else is a bug worth its stack.
  process.stderr.write(
    `cdcflow: ${error instanceof CdcflowError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = error instanceof CliError ? error.exitCode : 1;
}
