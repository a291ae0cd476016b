/**
 * `cdcflow rescale JOB N`: a savepoint-and-stop through the REST API, then the same job file,
 * arguments and working directory again at parallelism N from that savepoint. The configuration
 * the stopped job had loaded goes in as the new run's config file (`<root>/<job>/rescale-config.json`),
 * so the new run does not depend on this shell's environment, which still applies on top of it.
 */
import { join } from 'node:path';
import { writePrivateFile } from '../rest/private-file.ts';
import type { CliContext } from './cli-context.ts';
import { CliError } from './cli-error.ts';
import { JobClient } from './job-client.ts';
import { stopJob } from './job-commands.ts';
import { runJobFile, withoutFlags } from './run-job.ts';

const REPLACED_FLAGS = [
  'config',
  'from-savepoint',
  'from-checkpoint',
  'from-latest',
  'fresh',
  'parallelism',
  'discard-sink-transactions',
];

export async function rescaleJob(ctx: CliContext, job: string, parallelismText: string): Promise<number> {
  const parallelism = Number(parallelismText);
  if (!Number.isInteger(parallelism) || parallelism < 1)
    throw new CliError(`rescale ${job} ${parallelismText}: the parallelism must be a positive integer`);
  const { registration } = await JobClient.connect(ctx, job);
  if (registration.config === undefined) {
    throw new CliError(
      `${job} was not started with the typed configuration (loadJobConfig), so its configuration cannot be carried over: stop it with --savepoint and run it again with --parallelism ${parallelism}`,
    );
  }
  const {
    restore: _restore,
    discardSinkTransactions: _discard,
    parallelism: before,
    ...carried
  } = registration.config as Record<string, unknown>;
  const outcome = await stopJob(ctx, job, { savepoint: true, name: `rescale-${Date.now()}` });
  if (outcome.savepointPath === undefined)
    throw new CliError(
      `${job} stopped without a savepoint; start it yourself with --from-latest --parallelism ${parallelism}`,
    );
  const configFile = join(ctx.root, job, 'rescale-config.json');
  await writePrivateFile(configFile, `${JSON.stringify(carried, null, 2)}\n`);
  const args = [
    ...withoutFlags(registration.command.args, REPLACED_FLAGS),
    '--config',
    configFile,
    '--from-savepoint',
    outcome.savepointPath,
    '--parallelism',
    String(parallelism),
  ];
  ctx.print(
    `rescaling ${job} from parallelism ${String(before)} to ${parallelism}: ${registration.command.module} ${args.join(' ')}`,
  );
  return runJobFile(registration.command.module, args, { cwd: registration.command.cwd });
}
