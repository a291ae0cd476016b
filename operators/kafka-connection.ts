/**
 * How every Kafka client cdcflow builds reaches the cluster: brokers, TLS and SASL in one typed
 * config. The source's consumer, its dead-letter producer and admin, the transactional Kafka
 * sink, the Elasticsearch sink's dead letters, and the bench and test helpers all build their
 * kafkajs client with `kafkaClientConfig`, so a cluster that needs TLS or SASL/SCRAM works
 * everywhere or nowhere, never for one client only.
 *
 * Settings an option does not give come from the environment (`kafkaConnectionFromEnv`):
 *
 *   KAFKA_BROKERS                    host:port,host:port
 *   KAFKA_SSL                        true: TLS with the system CAs
 *   KAFKA_SSL_CA_FILE                PEM CA bundle (implies TLS)
 *   KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE, KAFKA_SSL_KEY_PASSPHRASE(_FILE)   mutual TLS
 *   KAFKA_SSL_REJECT_UNAUTHORIZED    false only for a test broker
 *   KAFKA_SASL_MECHANISM             plain | scram-sha-256 | scram-sha-512
 *   KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE
 *
 * Secrets (passwords, key passphrases) are read when a client is built, from an environment
 * variable or a file; `describeKafkaConnection` is what logs may show, and it never shows them.
 */
import { kafkajsLogCreator, rootLogger } from './logger.ts';
import { readFileSync } from 'node:fs';
import type { KafkaConfig, SASLOptions } from 'kafkajs';
import { CdcflowError } from '../state/errors.ts';

/** A secret: inline (tests only), the name of an environment variable, or a file (a mounted Kubernetes secret). */
export type Secret = string | { readonly env: string } | { readonly file: string };

export interface KafkaTlsConfig {
  /** PEM file of the CA(s) the brokers' certificates chain to. @default the system CAs */
  readonly caFile?: string;
  /** PEM client certificate and key, for brokers that require mutual TLS (`ssl.client.auth=required`). */
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly keyPassphrase?: Secret;
  /** Verify the brokers' certificates. Turn off only for a throwaway test broker. @default true */
  readonly rejectUnauthorized?: boolean;
  /** Host name to verify the certificate against, when it differs from the broker address. */
  readonly servername?: string;
}

export interface KafkaSaslConfig {
  readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  readonly username: string;
  readonly password: Secret;
}

/** TLS: `true` for the system CAs, or files. */
export type KafkaSsl = true | KafkaTlsConfig;

export interface KafkaConnection {
  readonly brokers: readonly string[];
  /** SASL over TLS is SASL_SSL; without it, SASL_PLAINTEXT. */
  readonly ssl?: KafkaSsl;
  readonly sasl?: KafkaSaslConfig;
}

/** A Kafka connection setting is missing or wrong: fix the job's options or the environment (never retried). */
export class KafkaConfigError extends CdcflowError {
  constructor(message: string) {
    super(message, { domain: 'user', retriable: false });
  }
}

/** What a client option may give; the rest comes from the environment. */
export type KafkaConnectionOptions = Partial<KafkaConnection>;

/** `options` completed from the environment: explicit options win, field by field. */
export function resolveKafkaConnection(
  options: KafkaConnectionOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): KafkaConnection {
  const fromEnv = kafkaConnectionFromEnv(env);
  const brokers = options.brokers ?? fromEnv.brokers;
  if (brokers.length === 0) throw new KafkaConfigError('no Kafka brokers: pass brokers or set KAFKA_BROKERS');
  const ssl = options.ssl ?? fromEnv.ssl;
  const sasl = options.sasl ?? fromEnv.sasl;
  return { brokers, ...(ssl === undefined ? {} : { ssl }), ...(sasl === undefined ? {} : { sasl }) };
}

export function kafkaConnectionFromEnv(env: NodeJS.ProcessEnv = process.env): KafkaConnection {
  const brokers = (env['KAFKA_BROKERS'] ?? '127.0.0.1:19092')
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
  const ssl = tlsFromEnv(env);
  const sasl = saslFromEnv(env);
  return { brokers, ...(ssl === undefined ? {} : { ssl }), ...(sasl === undefined ? {} : { sasl }) };
}

function tlsFromEnv(env: NodeJS.ProcessEnv): true | KafkaTlsConfig | undefined {
  const files = {
    caFile: env['KAFKA_SSL_CA_FILE'],
    certFile: env['KAFKA_SSL_CERT_FILE'],
    keyFile: env['KAFKA_SSL_KEY_FILE'],
  };
  const passphrase = secretFromEnv(env, 'KAFKA_SSL_KEY_PASSPHRASE');
  const reject = env['KAFKA_SSL_REJECT_UNAUTHORIZED'];
  const anyFile = Object.values(files).some((f) => f !== undefined && f !== '');
  if (!anyFile && !isTrue(env['KAFKA_SSL'])) return undefined;
  if (!anyFile && passphrase === undefined && reject === undefined) return true;
  return {
    ...(files.caFile ? { caFile: files.caFile } : {}),
    ...(files.certFile ? { certFile: files.certFile } : {}),
    ...(files.keyFile ? { keyFile: files.keyFile } : {}),
    ...(passphrase === undefined ? {} : { keyPassphrase: passphrase }),
    ...(reject === undefined ? {} : { rejectUnauthorized: isTrue(reject) }),
  };
}

function saslFromEnv(env: NodeJS.ProcessEnv): KafkaSaslConfig | undefined {
  const mechanism = env['KAFKA_SASL_MECHANISM'];
  if (mechanism === undefined || mechanism === '') return undefined;
  const m = mechanism.toLowerCase();
  if (m !== 'plain' && m !== 'scram-sha-256' && m !== 'scram-sha-512') {
    throw new KafkaConfigError(
      `KAFKA_SASL_MECHANISM '${mechanism}' is not supported: use plain, scram-sha-256 or scram-sha-512`,
    );
  }
  const username = env['KAFKA_SASL_USERNAME'];
  const password = secretFromEnv(env, 'KAFKA_SASL_PASSWORD');
  if (username === undefined || password === undefined)
    throw new KafkaConfigError(
      'KAFKA_SASL_MECHANISM is set: set KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE) too',
    );
  return { mechanism: m, username, password };
}

/** `NAME` holds the secret, or `NAME_FILE` names a file holding it; the value itself is read later. */
function secretFromEnv(env: NodeJS.ProcessEnv, name: string): Secret | undefined {
  if (env[`${name}_FILE`]) return { file: env[`${name}_FILE`] as string };
  if (env[name] !== undefined) return { env: name };
  return undefined;
}

function isTrue(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on)$/i.test(value.trim());
}

/** Reads a secret now; the message names where it looked, never the value. */
export function readSecret(secret: Secret, what: string, env: NodeJS.ProcessEnv = process.env): string {
  if (typeof secret === 'string') return secret;
  if ('env' in secret) {
    const value = env[secret.env];
    if (value === undefined) throw new KafkaConfigError(`${what}: environment variable ${secret.env} is not set`);
    return value;
  }
  return readFileText(secret.file, what).replace(/\r?\n$/, '');
}

function readFileText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new KafkaConfigError(
      `${what}: cannot read ${path} (${error instanceof Error ? error.message : String(error)})`,
    );
  }
}

/** The kafkajs client config for `connection` plus client settings (clientId, logLevel, timeouts…). */
export function kafkaClientConfig(
  connection: KafkaConnection,
  client: Omit<KafkaConfig, 'brokers' | 'ssl' | 'sasl'> = {},
): KafkaConfig {
  // kafkajs's own log lines go through the job's logger unless a caller brings its own.
  const config: KafkaConfig = {
    logCreator: kafkajsLogCreator(rootLogger()),
    ...client,
    brokers: [...connection.brokers],
  };
  if (connection.ssl !== undefined) config.ssl = tlsOptions(connection.ssl);
  if (connection.sasl !== undefined) config.sasl = saslOptions(connection.sasl);
  return config;
}

function tlsOptions(ssl: true | KafkaTlsConfig): true | NonNullable<Exclude<KafkaConfig['ssl'], boolean>> {
  if (ssl === true) return true;
  if ((ssl.certFile === undefined) !== (ssl.keyFile === undefined))
    throw new KafkaConfigError('Kafka TLS: certFile and keyFile go together (mutual TLS needs both)');
  return {
    ...(ssl.caFile === undefined ? {} : { ca: [readFileText(ssl.caFile, 'Kafka TLS caFile')] }),
    ...(ssl.certFile === undefined ? {} : { cert: readFileText(ssl.certFile, 'Kafka TLS certFile') }),
    ...(ssl.keyFile === undefined ? {} : { key: readFileText(ssl.keyFile, 'Kafka TLS keyFile') }),
    ...(ssl.keyPassphrase === undefined
      ? {}
      : { passphrase: readSecret(ssl.keyPassphrase, 'Kafka TLS keyPassphrase') }),
    rejectUnauthorized: ssl.rejectUnauthorized ?? true,
    ...(ssl.servername === undefined ? {} : { servername: ssl.servername }),
  };
}

function saslOptions(sasl: KafkaSaslConfig): SASLOptions {
  return {
    mechanism: sasl.mechanism,
    username: sasl.username,
    password: readSecret(sasl.password, `Kafka SASL password of '${sasl.username}'`),
  };
}

/** For logs: brokers, protocol and user, never a secret. */
export function describeKafkaConnection(connection: KafkaConnection): string {
  const tls = connection.ssl !== undefined;
  const protocol = connection.sasl === undefined ? (tls ? 'SSL' : 'PLAINTEXT') : tls ? 'SASL_SSL' : 'SASL_PLAINTEXT';
  const user = connection.sasl === undefined ? '' : ` as ${connection.sasl.username} (${connection.sasl.mechanism})`;
  return `${connection.brokers.join(',')} over ${protocol}${user}`;
}
