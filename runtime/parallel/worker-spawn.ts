/**
 * Starts the worker threads of a parallel job, each running the job module. A TypeScript job
 * runs under tsx (`node --import tsx job.ts`); in Node 20 a worker does not get the loader that
 * `--import` registered in the main thread, so a tiny bootstrap registers tsx's ESM hooks in the
 * worker before importing the job module. `process.argv[1]` is set to the job file, so the
 * usual `import.meta.url === pathToFileURL(process.argv[1]).href` guard runs the job there too.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isAbsolute, resolve } from 'node:path';
import { tsxApi, workerExecArgv } from '../../operators/sources/kafka/decode-pool.ts';
import type { RestoredTask } from '../execution/restore-assignment.ts';
import type { SubtaskInit } from './protocol.ts';

/** The job module as a file URL: the option, else the entry file of this process. */
export function jobModuleUrl(option: string | undefined): string {
  const given = option ?? process.argv[1];
  if (given === undefined || given === '')
    throw new Error('parallel execution needs the job module: set the jobModule option (jobModule: import.meta.url)');
  if (given.startsWith('file:')) return given;
  return pathToFileURL(isAbsolute(given) ? given : resolve(given)).href;
}

function bootstrap(moduleUrl: string, useTsx: boolean): string {
  const tsx = useTsx ? tsxApi() : undefined;
  return [
    `process.argv.splice(1, 1);`,
    tsx === undefined
      ? `import(${JSON.stringify(moduleUrl)});`
      : `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(moduleUrl)}); });`,
  ].join('\n');
}

/** One MessagePort per pair of subtasks: `ports[i][j]` is subtask i's end towards j. */
export function exchangeMesh(parallelism: number): (MessagePort | undefined)[][] {
  const ports: (MessagePort | undefined)[][] = Array.from({ length: parallelism }, () =>
    Array.from({ length: parallelism }, () => undefined),
  );
  for (let i = 0; i < parallelism; i++) {
    for (let j = i + 1; j < parallelism; j++) {
      const { port1, port2 } = new MessageChannel();
      (ports[i] as (MessagePort | undefined)[])[j] = port1;
      (ports[j] as (MessagePort | undefined)[])[i] = port2;
    }
  }
  return ports;
}

export interface SpawnSpec {
  readonly jobName: string;
  readonly moduleUrl: string;
  readonly parallelism: number;
  readonly highestParallelism: number;
  readonly restored: readonly Map<string, RestoredTask>[];
  readonly freshStart?: SubtaskInit['freshStart'];
}

export function spawnSubtasks(spec: SpawnSpec): Worker[] {
  const mesh = exchangeMesh(spec.parallelism);
  const file = spec.moduleUrl.startsWith('file:') ? fileURLToPath(spec.moduleUrl) : spec.moduleUrl;
  const useTsx = /\.[cm]?tsx?$/.test(file);
  const code = bootstrap(spec.moduleUrl, useTsx);
  return mesh.map((peers, subtaskIndex) => {
    const init: SubtaskInit = {
      kind: 'cdcflow-subtask',
      jobName: spec.jobName,
      subtaskIndex,
      parallelism: spec.parallelism,
      highestParallelism: spec.highestParallelism,
      restored: [...(spec.restored[subtaskIndex] ?? new Map<string, RestoredTask>())],
      ...(spec.freshStart === undefined ? {} : { freshStart: spec.freshStart }),
      peers,
    };
    const transfer = peers.filter((p): p is MessagePort => p !== undefined);
    // The loader is registered by the bootstrap (as for the decode workers), not by inherited
    // execArgv; heap flags (`cdcflow run` gives one) are process-wide and refused in a worker's execArgv.
    const execArgv = workerExecArgv(process.execArgv);
    // The job's own arguments too, so a module that reads its command line builds the same graph.
    return new Worker(code, {
      eval: true,
      workerData: init,
      transferList: transfer,
      argv: [file, ...process.argv.slice(2)],
      execArgv,
    });
  });
}
