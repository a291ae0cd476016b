/**
 * A Kafka Connect worker of one test's own (Debezium installed), for chaos tests that kill and
 * restart it: the shared worker on 18083 carries other tests' connectors and is never touched.
 * The stack's worker service (`kafkaConnectWorker`) on a free REST port, with its own group and
 * internal topics on the shared broker, started and readiness-checked by `upService`.
 *
 * `kill()` is a worker crash (SIGKILL: no offset flush, no graceful task stop): on `start()` the
 * connector resumes from the last offset it committed, re-sending what came after (duplicates).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { stackPaths } from '../../../scripts/stack/paths.ts';
import { isAlive, ownedPid, sleep, stopDaemon } from '../../../scripts/stack/process.ts';
import type { StackService } from '../../../scripts/stack/service.ts';
import { kafkaConnectWorker } from '../../../scripts/stack/services/debezium.ts';
import { upService } from '../../../scripts/stack/stack.ts';
import { freePorts } from '../dedicated-kafka.ts';
import { testEndpoints, uniqueName } from '../endpoints.ts';

export class DedicatedConnect {
  private constructor(
    private readonly service: StackService,
    readonly restPort: number,
    readonly groupId: string,
    readonly dataDir: string,
    private readonly log: (line: string) => void,
  ) {}

  static async create(log: (line: string) => void = () => undefined): Promise<DedicatedConnect> {
    const [restPort] = (await freePorts(1)) as [number];
    const dataDir = mkdtempSync(join(tmpdir(), 'cdcflow-connect-'));
    const groupId = uniqueName('cdcflow-connect-test');
    const service = kafkaConnectWorker({ name: `connect-test-${restPort}`, restPort, groupId, dataDir, brokers: testEndpoints().kafkaBrokers });
    return new DedicatedConnect(service, restPort, groupId, dataDir, log);
  }

  get url(): string {
    return `http://127.0.0.1:${this.restPort}`;
  }

  get logFile(): string {
    return stackPaths.log(this.service.name);
  }

  get pid(): number | undefined {
    return ownedPid(this.service.name);
  }

  async start(): Promise<void> {
    await upService(this.service, this.log);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    process.kill(pid, signal);
    for (let waited = 0; isAlive(pid) && waited < 60_000; waited += 50) await sleep(50);
    if (isAlive(pid)) throw new Error(`${this.service.name} (pid ${pid}) still runs 60 s after ${signal}`);
  }

  /** Stops it for good, deletes its internal topics and data folder (and its log unless `keepLog`). */
  async destroy(keepLog = false): Promise<void> {
    await stopDaemon(this.service.name, 10_000);
    rmSync(this.dataDir, { recursive: true, force: true });
    if (!keepLog) rmSync(this.logFile, { force: true });
    const admin = new Kafka({ clientId: 'connect-cleanup', brokers: testEndpoints().kafkaBrokers.split(','), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${this.groupId}-`));
      if (topics.length > 0) await admin.deleteTopics({ topics });
      await admin.deleteGroups([this.groupId]).catch(() => undefined);
    } finally {
      await admin.disconnect();
    }
  }
}
