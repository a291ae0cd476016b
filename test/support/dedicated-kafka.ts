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
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kafkaBroker, runKafkaTool } from '../../scripts/stack/services/kafka.ts';
import type { StackService } from '../../scripts/stack/service.ts';
import { DedicatedService } from './dedicated-service.ts';
import { makeTestTls, securityListenerSettings, type TestTlsMaterial } from './kafka-tls.ts';

/** Where a secured test broker's TLS and SASL listeners are, and its certificates. */
export interface BrokerSecurity {
  readonly tls: TestTlsMaterial;
  readonly sslBrokers: string;
  readonly saslBrokers: string;
}

export class DedicatedKafka extends DedicatedService {
  private constructor(
    service: StackService,
    readonly clientPort: number,
    dataDir: string,
    log: (line: string) => void,
  ) {
    super(service, dataDir, log);
  }

  /** Picks two free ports and a fresh data folder; call `start()` to run it. */
  static async create(log: (line: string) => void = () => undefined): Promise<DedicatedKafka> {
    const [clientPort, controllerPort] = (await freePorts(2)) as [number, number];
    const dataDir = mkdtempSync(join(tmpdir(), 'cdcflow-kafka-'));
    const service = kafkaBroker({
      name: `kafka-test-${clientPort}`,
      clientPort,
      controllerPort,
      dataDir,
      heap: '256m',
    });
    return new DedicatedKafka(service, clientPort, dataDir, log);
  }

  /**
   * A broker with two more listeners: SSL on `security.sslPort` (client certificates required;
   * certificates made now by openssl/keytool, see kafka-tls.ts) and SASL_PLAINTEXT with
   * SCRAM-SHA-256/512 on `security.saslPort`. PLAINTEXT stays for readiness and provisioning.
   * Create SCRAM users with `addScramUser` once it runs.
   */
  static async createSecured(
    log: (line: string) => void = () => undefined,
  ): Promise<DedicatedKafka & { readonly security: BrokerSecurity }> {
    const [clientPort, controllerPort, sslPort, saslPort] = (await freePorts(4)) as [number, number, number, number];
    const dataDir = mkdtempSync(join(tmpdir(), 'cdcflow-kafka-secure-'));
    const tls = makeTestTls(dataDir);
    const service = kafkaBroker({
      name: `kafka-test-${clientPort}`,
      clientPort,
      controllerPort,
      dataDir,
      heap: '256m',
      extraListeners: [
        { name: 'SSL', port: sslPort },
        { name: 'SASL_PLAINTEXT', port: saslPort },
      ],
      extraSettings: securityListenerSettings(tls),
    });
    const broker = new DedicatedKafka(service, clientPort, dataDir, log);
    return Object.assign(broker, {
      security: { tls, sslBrokers: `127.0.0.1:${sslPort}`, saslBrokers: `127.0.0.1:${saslPort}` },
    });
  }

  /** Creates (or resets) a SCRAM user, as `kafka-configs.sh --alter --add-config SCRAM-SHA-…` does. */
  async addScramUser(
    username: string,
    password: string,
    mechanism: 'SCRAM-SHA-256' | 'SCRAM-SHA-512' = 'SCRAM-SHA-256',
  ): Promise<void> {
    await runKafkaTool('kafka.admin.ConfigCommand', [
      '--bootstrap-server',
      this.brokers,
      '--alter',
      '--add-config',
      `${mechanism}=[iterations=4096,password=${password}]`,
      '--entity-type',
      'users',
      '--entity-name',
      username,
    ]);
  }

  get brokers(): string {
    return `127.0.0.1:${this.clientPort}`;
  }

  // start() formats the data folder the first time and waits until its coordinators answer.
}

/** `count` distinct ports the kernel considers free right now (bound to port 0, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}
