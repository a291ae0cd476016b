/**
 * The same services as docker-compose.yml, through testcontainers, for machines with a Docker
 * engine. Loaded lazily: without Docker the project stack is used and this module costs nothing.
 */
import { connect } from 'node:net';
import type { ServiceEndpoints } from '../../scripts/stack/endpoints.ts';

export async function dockerAnswers(): Promise<boolean> {
  const socket = process.env['DOCKER_HOST']?.replace(/^unix:\/\//, '') ?? '/var/run/docker.sock';
  if (socket.startsWith('tcp://')) return true;
  return new Promise((resolve) => {
    const probe = connect(socket);
    probe.setTimeout(1000, () => (probe.destroy(), resolve(false)));
    probe.once('connect', () => (probe.destroy(), resolve(true)));
    probe.once('error', () => resolve(false));
  });
}

export interface RunningContainers {
  readonly endpoints: ServiceEndpoints;
  stop(): Promise<void>;
}

export async function startContainers(): Promise<RunningContainers> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const kafka = await new GenericContainer('apache/kafka:3.9.1')
    .withExposedPorts(19092)
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: 'PLAINTEXT://0.0.0.0:19092,CONTROLLER://0.0.0.0:19093',
      KAFKA_ADVERTISED_LISTENERS: 'PLAINTEXT://127.0.0.1:19092',
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:19093',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
    })
    // The advertised address must be what the host dials, so the container keeps the same port.
    .withExposedPorts({ container: 19092, host: 19092 })
    .start();
  const postgres = await new GenericContainer('postgres:15')
    .withEnvironment({ POSTGRES_USER: 'cdcflow', POSTGRES_PASSWORD: 'cdcflow', POSTGRES_DB: 'cdcflow' })
    .withCommand(['postgres', '-c', 'wal_level=logical', '-c', 'max_prepared_transactions=64'])
    .withExposedPorts(5432)
    .withWaitStrategy(Wait.forLogMessage(/ready to accept connections/, 2))
    .start();
  const redis = await new GenericContainer('redis:7').withExposedPorts(6379).start();
  const registry = await new GenericContainer('apicurio/apicurio-registry-mem:2.6.2.Final')
    .withExposedPorts(8080)
    .start();
  const elastic = await new GenericContainer('docker.elastic.co/elasticsearch/elasticsearch:7.10.2')
    .withEnvironment({ 'discovery.type': 'single-node', ES_JAVA_OPTS: '-Xms512m -Xmx512m' })
    .withExposedPorts(9200)
    .withWaitStrategy(Wait.forHttp('/_cluster/health', 9200))
    .start();
  // Host networking: connector configs name Postgres by the address the host sees (127.0.0.1:<mapped>).
  const connect = await new GenericContainer('quay.io/debezium/connect:3.6.1.Final')
    .withNetworkMode('host')
    .withEnvironment({
      BOOTSTRAP_SERVERS: '127.0.0.1:19092',
      REST_PORT: '18083',
      CONNECT_LISTENERS: 'http://127.0.0.1:18083',
      CONNECT_REST_ADVERTISED_HOST_NAME: '127.0.0.1',
      CONNECT_REST_ADVERTISED_PORT: '18083',
      CONNECT_CONFIG_STORAGE_REPLICATION_FACTOR: '1',
      CONNECT_OFFSET_STORAGE_REPLICATION_FACTOR: '1',
      CONNECT_STATUS_STORAGE_REPLICATION_FACTOR: '1',
      GROUP_ID: 'cdcflow-connect',
      CONFIG_STORAGE_TOPIC: 'cdcflow-connect-configs',
      OFFSET_STORAGE_TOPIC: 'cdcflow-connect-offsets',
      STATUS_STORAGE_TOPIC: 'cdcflow-connect-status',
      KEY_CONVERTER: 'org.apache.kafka.connect.json.JsonConverter',
      VALUE_CONVERTER: 'org.apache.kafka.connect.json.JsonConverter',
      CONNECT_KEY_CONVERTER_SCHEMAS_ENABLE: 'false',
      CONNECT_VALUE_CONVERTER_SCHEMAS_ENABLE: 'false',
      OFFSET_FLUSH_INTERVAL_MS: '1000',
      CONNECT_SCHEDULED_REBALANCE_MAX_DELAY_MS: '0',
    })
    .withWaitStrategy(Wait.forHttp('/connectors', 18083))
    .start();
  const all = [kafka, postgres, redis, registry, elastic, connect];
  const host = (c: (typeof all)[number], port: number) => `${c.getHost()}:${c.getMappedPort(port)}`;
  return {
    endpoints: {
      kafkaBrokers: '127.0.0.1:19092',
      databaseUrl: `postgres://cdcflow:cdcflow@${host(postgres, 5432)}/cdcflow`,
      redisUrl: `redis://${host(redis, 6379)}`,
      schemaRegistryUrl: `http://${host(registry, 8080)}/apis/ccompat/v7`,
      elasticsearchUrl: `http://${host(elastic, 9200)}`,
      kafkaConnectUrl: 'http://127.0.0.1:18083',
    },
    stop: async () => {
      await Promise.all(all.map((c) => c.stop()));
    },
  };
}
