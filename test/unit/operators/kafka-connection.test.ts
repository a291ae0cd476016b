/** The one Kafka connection config (operators/kafka-connection.ts): options, environment, secrets. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  describeKafkaConnection,
  kafkaClientConfig,
  kafkaConnectionFromEnv,
  KafkaConfigError,
  resolveKafkaConnection,
} from '../../../operators/kafka-connection.ts';

const dir = mkdtempSync(join(tmpdir(), 'cdcflow-kafka-conn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('kafka connection', () => {
  it('reads TLS files and a SCRAM password file from the environment', () => {
    const ca = file('ca.pem', 'CA PEM');
    const password = file('password', 's3cret\n');
    const env = {
      KAFKA_BROKERS: 'a:9093,b:9093',
      KAFKA_SSL_CA_FILE: ca,
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'job',
      KAFKA_SASL_PASSWORD_FILE: password,
    };
    const connection = kafkaConnectionFromEnv(env);
    expect(connection).toEqual({
      brokers: ['a:9093', 'b:9093'],
      ssl: { caFile: ca },
      sasl: { mechanism: 'scram-sha-512', username: 'job', password: { file: password } },
    });
    const config = kafkaClientConfig(connection, { clientId: 'x' });
    expect(config).toMatchObject({
      clientId: 'x',
      brokers: ['a:9093', 'b:9093'],
      ssl: { ca: ['CA PEM'], rejectUnauthorized: true },
      sasl: { mechanism: 'scram-sha-512', username: 'job', password: 's3cret' },
    });
    // What logs may show: no secret.
    expect(describeKafkaConnection(connection)).toBe('a:9093,b:9093 over SASL_SSL as job (scram-sha-512)');
    expect(JSON.stringify(connection)).not.toContain('s3cret');
  });

  it('explicit options win over the environment, field by field', () => {
    const env = {
      KAFKA_BROKERS: 'env:9092',
      KAFKA_SSL: 'true',
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 'p',
    };
    const resolved = resolveKafkaConnection({ brokers: ['opt:9092'] }, env);
    expect(resolved).toEqual({
      brokers: ['opt:9092'],
      ssl: true,
      sasl: { mechanism: 'plain', username: 'u', password: { env: 'KAFKA_SASL_PASSWORD' } },
    });
    expect(resolveKafkaConnection({}, {})).toEqual({ brokers: ['127.0.0.1:19092'] });
  });

  it('refuses an incomplete or unknown setting with a message that says what to set', () => {
    expect(() =>
      kafkaConnectionFromEnv({ KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }),
    ).toThrow(KafkaConfigError);
    expect(() => kafkaConnectionFromEnv({ KAFKA_SASL_MECHANISM: 'plain' })).toThrow(
      /KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD/,
    );
    expect(() => kafkaClientConfig({ brokers: ['a:1'], ssl: { certFile: 'c.pem' } })).toThrow(
      /certFile and keyFile go together/,
    );
    expect(() =>
      kafkaClientConfig({
        brokers: ['a:1'],
        sasl: { mechanism: 'plain', username: 'u', password: { env: 'CDCFLOW_NO_SUCH_VARIABLE' } },
      }),
    ).toThrow(/CDCFLOW_NO_SUCH_VARIABLE is not set/);
    const error = (() => {
      try {
        kafkaClientConfig({ brokers: ['a:1'], ssl: { caFile: join(dir, 'missing.pem') } });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(KafkaConfigError);
    expect((error as KafkaConfigError).retriable).toBe(false);
  });
});
