/**
 * A stack service of one test's own (a broker, a Connect worker) that the test may kill and start
 * again: the process handling DedicatedKafka and DedicatedConnect share. The service is started
 * and readiness-checked by the same `upService` as `npm run stack -- up`; shared services are
 * never touched.
 */
import { rmSync } from 'node:fs';
import { isAlive, ownedPid, sleep, stopDaemon } from '../../scripts/stack/process.ts';
import type { StackService } from '../../scripts/stack/service.ts';
import { stackPaths } from '../../scripts/stack/paths.ts';
import { upService } from '../../scripts/stack/stack.ts';

export class DedicatedService {
  protected constructor(
    protected readonly service: StackService,
    readonly dataDir: string,
    protected readonly log: (line: string) => void,
  ) {}

  get name(): string {
    return this.service.name;
  }

  /** Its log file (the process's stdout), for a failing test's message. */
  get logFile(): string {
    return stackPaths.log(this.service.name);
  }

  get pid(): number | undefined {
    return ownedPid(this.service.name);
  }

  /** Starts it and waits until it is ready (the service's own readiness check). */
  async start(): Promise<void> {
    await upService(this.service, this.log);
  }

  /** Sends `signal` (a crash by default: SIGKILL) and waits (≤ 60 s) until the process is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    process.kill(pid, signal);
    for (let waited = 0; isAlive(pid) && waited < 60_000; waited += 50) await sleep(50);
    if (isAlive(pid)) throw new Error(`${this.name} (pid ${pid}) still runs 60 s after ${signal}`);
  }

  /** Stops it for good and deletes its data folder (and its log, unless `keepLog` for a failed test). */
  async destroy(keepLog = false): Promise<void> {
    await stopDaemon(this.service.name, 10_000);
    rmSync(this.dataDir, { recursive: true, force: true });
    if (!keepLog) rmSync(this.logFile, { force: true });
  }
}
