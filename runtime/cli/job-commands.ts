/** The commands that talk to a running job: list, info, savepoint, stop, cancel. */
import { hostname } from 'node:os';
import { jobsUnder, listCheckpoints } from '../checkpoint-catalog.ts';
import type { JobStatusView, OperatorPlan, StopOutcome } from '../rest/job-control.ts';
import { readRegistration, registrantMayBeAlive, type JobRegistration } from '../rest/registration.ts';
import type { CliContext } from './cli-context.ts';
import { CliError } from './cli-error.ts';
import { ago, duration, table } from './format.ts';
import { JobClient } from './job-client.ts';

export type JobInfo = Omit<JobStatusView, 'exceptions'> & {
  readonly name: string;
  readonly plan: { readonly operators: readonly OperatorPlan[] };
  readonly exceptions: { readonly history: JobStatusView['exceptions'] };
};

export async function listJobs(ctx: CliContext): Promise<void> {
  const rows: {
    job: string;
    state: string;
    parallelism: number | undefined;
    lastCheckpoint: number | undefined;
    rest: string | undefined;
  }[] = [];
  for (const job of await jobsUnder(ctx.root)) {
    const registration = await readRegistration(ctx.root, job);
    const info =
      registration !== undefined && registrantMayBeAlive(registration)
        ? await JobClient.connect(ctx, job).then(
            (c) => c.get<JobInfo>(`/jobs/${job}`),
            () => undefined,
          )
        : undefined;
    if (info !== undefined) {
      rows.push({
        job,
        state: info.state,
        parallelism: info.parallelism,
        lastCheckpoint: info.lastCompletedCheckpoint?.checkpointId,
        rest: registration?.url,
      });
    } else {
      const catalog = await listCheckpoints(ctx.root, job);
      const ids = [...catalog.checkpoints, ...catalog.savepoints].map((c) => c.id);
      rows.push({
        job,
        state: 'not running',
        parallelism: undefined,
        lastCheckpoint: ids.length === 0 ? undefined : Math.max(...ids),
        rest: undefined,
      });
    }
  }
  ctx.output({ root: ctx.root, jobs: rows }, () =>
    rows.length === 0
      ? [`no jobs under ${ctx.root}`]
      : table(
          ['JOB', 'STATE', 'PARALLELISM', 'LAST CHECKPOINT', 'REST'],
          rows.map((r) => [
            r.job,
            r.state,
            r.parallelism === undefined ? '-' : String(r.parallelism),
            r.lastCheckpoint === undefined ? '-' : String(r.lastCheckpoint),
            r.rest ?? '-',
          ]),
        ),
  );
}

export async function jobInfo(ctx: CliContext, job: string): Promise<void> {
  const client = await JobClient.connect(ctx, job);
  const info = await client.get<JobInfo>(`/jobs/${job}`);
  const { registration } = client;
  ctx.output(info, () => [
    `job          ${info.name}`,
    `state        ${info.state}${info.startedAtMs === undefined ? '' : ` (up ${duration(Date.now() - info.startedAtMs)})`}, ${info.restarts} restarts`,
    `parallelism  ${info.parallelism}`,
    ...(info.restoredFrom === undefined ? [] : [`restored     ${info.restoredFrom}`]),
    `checkpoint   ${info.lastCompletedCheckpoint === undefined ? 'none completed yet' : `${info.lastCompletedCheckpoint.checkpointId} completed ${ago(info.lastCompletedCheckpoint.completedAtMs)}`}`,
    `rest         ${registration.url} (pid ${registration.pid} on ${registration.host})`,
    `plan`,
    ...table(
      ['UID', 'KIND', 'PARALLELISM', 'NAME', 'INPUTS'],
      info.plan.operators.map((o) => [o.uid, o.kind, String(o.parallelism), o.name, o.inputs.join(', ') || '-']),
    ).map((l) => `  ${l}`),
    `exceptions   ${info.exceptions.history.length === 0 ? 'none' : `${info.exceptions.history.length} (newest last)`}`,
    ...info.exceptions.history.map((e) => `  ${new Date(e.atMs).toISOString()}  ${e.message}`),
  ]);
}

export async function takeSavepoint(ctx: CliContext, job: string, name: string | undefined): Promise<void> {
  const client = await JobClient.connect(ctx, job);
  const { location } = await client.send<{ location: string }>(
    'POST',
    `/jobs/${job}/savepoints`,
    name === undefined ? {} : { name },
  );
  ctx.output({ job, location }, () => [
    `savepoint of ${job} written to ${location}`,
    `restore it with: cdcflow run ${client.registration.command.module} --from-savepoint ${location}`,
  ]);
}

export async function stopJob(
  ctx: CliContext,
  job: string,
  options: { savepoint?: boolean; name?: string },
): Promise<StopOutcome> {
  const client = await JobClient.connect(ctx, job);
  if (!ctx.json)
    ctx.print(
      `stopping ${job} (pid ${client.registration.pid})${options.savepoint === true || options.name !== undefined ? ' with a final savepoint' : ''}...`,
    );
  const body = {
    ...(options.savepoint === true ? { savepoint: true } : {}),
    ...(options.name === undefined ? {} : { name: options.name }),
  };
  const outcome = await client.send<StopOutcome>('POST', `/jobs/${job}/stop`, body);
  await waitForExit(ctx, client.registration, 60_000);
  ctx.output({ job, ...outcome }, () => [
    `stopped ${job}${outcome.savepointPath !== undefined ? `; final savepoint: ${outcome.savepointPath}` : outcome.checkpointId !== undefined ? ` at checkpoint ${outcome.checkpointId}` : ''}`,
    ...(outcome.savepointPath === undefined
      ? []
      : [`resume with: cdcflow run ${client.registration.command.module} --from-savepoint ${outcome.savepointPath}`]),
    // A job stopped while restoring or backing off has no attempt to checkpoint.
    ...(outcome.savepointPath === undefined && (options.savepoint === true || options.name !== undefined)
      ? [
          `no final savepoint was taken (the job was not running an attempt); the next start restores ${outcome.checkpointId === undefined ? 'its latest checkpoint' : `checkpoint ${outcome.checkpointId}`}`,
        ]
      : []),
  ]);
  return outcome;
}

export async function cancelJob(ctx: CliContext, job: string): Promise<void> {
  const client = await JobClient.connect(ctx, job);
  await client.send('PATCH', `/jobs/${job}`, {});
  if (!ctx.json) ctx.print(`cancelling ${job} (pid ${client.registration.pid})...`);
  await waitForExit(ctx, client.registration, 60_000);
  ctx.output({ job, state: 'cancelled' }, () => [
    `cancelled ${job}: no final checkpoint; the next start restores the last completed one`,
  ]);
}

/**
 * Waits until the registered process is gone (it holds the job's lease until then); for a job on
 * another host, until it removed its registration.
 */
export async function waitForExit(ctx: CliContext, registration: JobRegistration, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const local = registration.host === hostname();
  while (
    local
      ? registrantMayBeAlive(registration)
      : (await readRegistration(ctx.root, registration.job))?.startedAtMs === registration.startedAtMs
  ) {
    if (Date.now() > deadline)
      throw new CliError(
        `${registration.job}: pid ${registration.pid} still runs ${timeoutMs / 1000} s after it was told to end`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}
