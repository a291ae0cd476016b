/**
 * A Kafka broker of one test's own, for outage tests that must kill and restart a broker: the
 * shared one on 19092 serves everyone else and is never touched. It is the stack's broker service
 * (`kafkaBroker` in scripts/stack/services/kafka.ts) on two free ports and a temporary data folder,
 * started, readiness-checked and provisioned by the same `upService` as `npm run stack -- up`.
 *
 * `kill()` is a real broker crash (SIGKILL: no controlled shutdown, no flushed segments, the
 * transaction coordinator reloads `__transaction_state` on the next start); `start()` again brings
 * it back on the same ports and data folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kafkaBroker } from '../../scripts/stack/services/kafka.ts';
import { isAlive, ownedPid, sleep, stopDaemon } from '../../scripts/stack/process.ts';
import type { StackService } from '../../scripts/stack/service.ts';
import { stackPaths } from '../../scripts/stack/paths.ts';
import { upService } from '../../scripts/stack/stack.ts';

export class DedicatedKafka {
  private constructor(
    private readonly service: StackService,
    readonly clientPort: number,
    readonly dataDir: string,
    private readonly log: (line: string) => void,
  ) {}

  /** Picks two free ports and a fresh data folder; call `start()` to run it. */
  static async create(log: (line: string) => void = () => undefined): Promise<DedicatedKafka> {
    const [clientPort, controllerPort] = (await freePorts(2)) as [number, number];
    const dataDir = mkdtempSync(join(tmpdir(), 'cdcflow-kafka-'));
    const service = kafkaBroker({ name: `kafka-test-${clientPort}`, clientPort, controllerPort, dataDir, heap: '256m' });
    return new DedicatedKafka(service, clientPort, dataDir, log);
  }

  get brokers(): string {
    return `127.0.0.1:${this.clientPort}`;
  }

  get name(): string {
    return this.service.name;
  }

  /** Its log file (the broker's stdout), for a failing test's message. */
  get logFile(): string {
    return stackPaths.log(this.service.name);
  }

  get pid(): number | undefined {
    return ownedPid(this.service.name);
  }

  /** Starts it (formatting the data folder the first time) and waits until its coordinators answer. */
  async start(): Promise<void> {
    await upService(this.service, this.log);
  }

  /** Sends `signal` to the broker and waits (≤ 60 s) until the process is gone. */
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

/** `count` distinct ports the kernel considers free right now (bound to port 0, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}
