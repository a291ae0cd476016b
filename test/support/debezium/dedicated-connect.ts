/**
 * A Kafka Connect worker of one test's own (Debezium installed), for chaos tests that kill and
 * restart it: the shared worker on 18083 carries other tests' connectors and is never touched.
 * The stack's worker service (`kafkaConnectWorker`) on a free REST port, with its own group and
 * internal topics on the shared broker, started and readiness-checked by `upService`.
 *
 * `kill()` is a worker crash (SIGKILL: no offset flush, no graceful task stop): on `start()` the
 * connector resumes from the last offset it committed, re-sending what came after (duplicates).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import type { StackService } from '../../../scripts/stack/service.ts';
import { kafkaConnectWorker } from '../../../scripts/stack/services/debezium.ts';
import { freePorts } from '../dedicated-kafka.ts';
import { DedicatedService } from '../dedicated-service.ts';
import { testEndpoints, uniqueName } from '../endpoints.ts';

export class DedicatedConnect extends DedicatedService {
  private constructor(
    service: StackService,
    readonly restPort: number,
    readonly groupId: string,
    dataDir: string,
    log: (line: string) => void,
  ) {
    super(service, dataDir, log);
  }

  static async create(log: (line: string) => void = () => undefined): Promise<DedicatedConnect> {
    const [restPort] = (await freePorts(1)) as [number];
    const dataDir = mkdtempSync(join(tmpdir(), 'cdcflow-connect-'));
    const groupId = uniqueName('cdcflow-connect-test');
    const service = kafkaConnectWorker({
      name: `connect-test-${restPort}`,
      restPort,
      groupId,
      dataDir,
      brokers: testEndpoints().kafkaBrokers,
    });
    return new DedicatedConnect(service, restPort, groupId, dataDir, log);
  }

  get url(): string {
    return `http://127.0.0.1:${this.restPort}`;
  }

  /** Stops it for good, deletes its internal topics and data folder (and its log unless `keepLog`). */
  override async destroy(keepLog = false): Promise<void> {
    await super.destroy(keepLog);
    const admin = new Kafka({
      clientId: 'connect-cleanup',
      brokers: testEndpoints().kafkaBrokers.split(','),
      logLevel: logLevel.NOTHING,
    }).admin();
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
