import { existsSync, readFileSync } from 'node:fs';
import { StackError } from './errors.ts';
import { stackPaths } from './paths.ts';
import { ownedPid, stopDaemon } from './process.ts';
import type { StackService } from './service.ts';
import { waitUntil } from './wait.ts';

export type Logger = (line: string) => void;

/** Brings one service up, reusing a running instance (ours or the user's) when it answers. */
export async function upService(service: StackService, log: Logger): Promise<void> {
  const started = Date.now();
  if (await service.ready().catch(() => false)) {
    await service.provision?.();
    log(
      `${service.name}: already up on ${service.port}${ownedPid(service.name) === undefined ? ' (not started by us)' : ''}`,
    );
    return;
  }
  try {
    await service.install();
  } catch (error) {
    throw new StackError(
      service.name,
      `install failed: ${describe(error)}`,
      service.port,
      stackPaths.log(service.name),
    );
  }
  if (ownedPid(service.name) === undefined) await service.start();
  const outcome = await waitUntil(() => service.ready(), {
    timeoutMs: service.startTimeoutMs,
    isDead: () => ownedPid(service.name) === undefined,
  });
  if (outcome !== 'ready') {
    const why =
      outcome === 'dead' ? 'process exited during start-up' : `did not answer within ${service.startTimeoutMs} ms`;
    throw new StackError(
      service.name,
      `${why}; last log lines:\n${tail(stackPaths.log(service.name))}`,
      service.port,
      stackPaths.log(service.name),
    );
  }
  await service.provision?.();
  log(`${service.name}: up on 127.0.0.1:${service.port} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** Brings services up in parallel, each after the ones it depends on (among `services`) answer. */
export async function up(services: readonly StackService[], log: Logger): Promise<void> {
  const started = new Map<string, Promise<void>>();
  for (const service of services) {
    const dependencies = (service.dependsOn ?? []).flatMap((d) => started.get(d) ?? []);
    started.set(
      service.name,
      Promise.all(dependencies).then(() =>
        upService(service, log).catch((error: unknown) => {
          if (service.optional !== true) throw error;
          log(`${service.name}: skipped (optional; the tests that need it skip): ${describe(error).split('\n')[0]}`);
        }),
      ),
    );
  }
  const results = await Promise.allSettled(started.values());
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length > 0) throw new AggregateError(failures, failures.map(describe).join('\n'));
}

export async function down(services: readonly StackService[], log: Logger): Promise<void> {
  await Promise.all(
    services.map(async (s) => {
      const wasOurs = ownedPid(s.name) !== undefined;
      if (s.stop !== undefined) await s.stop();
      else await stopDaemon(s.name);
      log(`${s.name}: ${wasOurs ? 'stopped' : 'not started by us, left alone'}`);
    }),
  );
}

export async function status(services: readonly StackService[], log: Logger): Promise<boolean> {
  const states = await Promise.all(
    services.map(async (s) => {
      const answering = await s.ready().catch(() => false);
      const pid = ownedPid(s.name);
      log(
        `${s.name.padEnd(16)} port ${String(s.port).padEnd(6)} ${answering ? 'answering' : 'down'}${pid === undefined ? '' : ` (pid ${pid})`}`,
      );
      return answering;
    }),
  );
  return states.every(Boolean);
}

function tail(file: string, lines = 25): string {
  if (!existsSync(file)) return '(no log file)';
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
