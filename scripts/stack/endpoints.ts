/**
 * The ports the project's stack listens on. They are deliberately off the defaults so the stack
 * never collides with a developer's own Postgres, Redis or Kafka. docker-compose.yml uses the same.
 */
export const stackPorts = {
  kafka: 19092,
  kafkaController: 19093,
  postgres: 15432,
  redis: 16379,
  schemaRegistry: 18081,
  elasticsearch: 19200,
  kafkaConnect: 18083,
  prometheus: 19090,
  s3proxy: 19000,
  /** S3Proxy 4.1.0: honours If-None-Match on PUT, so group-mode claims can live in it. */
  s3proxyConditional: 19100,
} as const;

export interface ServiceEndpoints {
  readonly kafkaBrokers: string;
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly schemaRegistryUrl: string;
  readonly elasticsearchUrl: string;
  /** Kafka Connect's REST API, with Debezium's Postgres connector installed. */
  readonly kafkaConnectUrl: string;
}

export const stackEndpoints: ServiceEndpoints = {
  kafkaBrokers: `127.0.0.1:${stackPorts.kafka}`,
  databaseUrl: `postgres://cdcflow:cdcflow@127.0.0.1:${stackPorts.postgres}/cdcflow`,
  redisUrl: `redis://127.0.0.1:${stackPorts.redis}`,
  schemaRegistryUrl: `http://127.0.0.1:${stackPorts.schemaRegistry}/apis/ccompat/v7`,
  elasticsearchUrl: `http://127.0.0.1:${stackPorts.elasticsearch}`,
  kafkaConnectUrl: `http://127.0.0.1:${stackPorts.kafkaConnect}`,
};

/** The environment variables that name each service, as the test harness and jobs read them. */
export const endpointEnv = {
  kafkaBrokers: 'KAFKA_BROKERS',
  databaseUrl: 'DATABASE_URL',
  redisUrl: 'REDIS_URL',
  schemaRegistryUrl: 'SCHEMA_REGISTRY_URL',
  elasticsearchUrl: 'ELASTICSEARCH_URL',
  kafkaConnectUrl: 'KAFKA_CONNECT_URL',
} as const satisfies Record<keyof ServiceEndpoints, string>;

/** Endpoints from the environment where set, else the project stack's. */
export function endpointsFromEnv(env: NodeJS.ProcessEnv = process.env): ServiceEndpoints {
  const pick = (k: keyof ServiceEndpoints): string => env[endpointEnv[k]] ?? stackEndpoints[k];
  return {
    kafkaBrokers: pick('kafkaBrokers'),
    databaseUrl: pick('databaseUrl'),
    redisUrl: pick('redisUrl'),
    schemaRegistryUrl: pick('schemaRegistryUrl'),
    elasticsearchUrl: pick('elasticsearchUrl'),
    kafkaConnectUrl: pick('kafkaConnectUrl'),
  };
}

/**
 * The stack's S3-compatible store (S3Proxy on the filesystem; MinIO in docker-compose.yml) for
 * checkpoints in object storage. Kept apart from `ServiceEndpoints`: tests that need it skip
 * when `CDCFLOW_S3_ENDPOINT` is unset, and nothing else has to name it.
 */
export const stackS3 = {
  endpoint: `http://127.0.0.1:${stackPorts.s3proxy}`,
  bucket: 'cdcflow',
  accessKeyId: 'cdcflow',
  secretAccessKey: 'cdcflow-secret',
} as const;

/**
 * The stack's S3 store that honours `If-None-Match: *` (S3Proxy 4.1.0; MinIO in docker-compose.yml),
 * same bucket and keys: group-mode claims under `s3://` need it. Tests find it through
 * `CDCFLOW_S3_CONDITIONAL_ENDPOINT` and skip without it.
 */
export const stackS3Conditional = {
  ...stackS3,
  endpoint: `http://127.0.0.1:${stackPorts.s3proxyConditional}`,
} as const;

/** The environment a job or test reads the S3 store from (checkpoints/s3-location.ts). */
export function s3EnvFor(s3: typeof stackS3 = stackS3): Record<string, string> {
  return {
    CDCFLOW_S3_ENDPOINT: s3.endpoint,
    S3_ENDPOINT: s3.endpoint,
    CDCFLOW_S3_BUCKET: s3.bucket,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_REGION: 'us-east-1',
  };
}
