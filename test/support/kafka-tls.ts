/**
 * Certificates for a test broker's TLS listener, made at test time with openssl and keytool
 * (never checked in): a throwaway CA, a broker certificate for 127.0.0.1/localhost in a PKCS12
 * key store, a trust store holding the CA (the broker checks client certificates against it) and
 * a client certificate and key in PEM, as a job would be given them.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface TestTlsMaterial {
  readonly dir: string;
  /** PEM files for clients. */
  readonly caFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  /** PKCS12 stores for the broker, both under `storePassword`. */
  readonly brokerKeyStore: string;
  readonly trustStore: string;
  readonly storePassword: string;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', [...args], { cwd, stdio: 'pipe' });
}

/** Signs a new key's certificate for `subject` (with `san`) by the CA in `dir`. */
function issue(dir: string, name: string, subject: string, extensions: string): void {
  openssl(
    ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject],
    dir,
  );
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-sha256',
      '-extfile',
      `${name}.ext`,
    ],
    dir,
  );
}

export function makeTestTls(parent: string): TestTlsMaterial {
  const dir = join(parent, 'tls');
  mkdirSync(dir, { recursive: true });
  const storePassword = randomBytes(12).toString('hex');
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=cdcflow-test-ca',
    ],
    dir,
  );
  issue(
    dir,
    'broker',
    '/CN=localhost',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  issue(dir, 'client', '/CN=cdcflow-test-client', 'extendedKeyUsage=clientAuth\n');
  openssl(
    [
      'pkcs12',
      '-export',
      '-in',
      'broker.pem',
      '-inkey',
      'broker.key',
      '-certfile',
      'ca.pem',
      '-name',
      'broker',
      '-out',
      'broker.p12',
      '-passout',
      `pass:${storePassword}`,
    ],
    dir,
  );
  execFileSync(
    'keytool',
    [
      '-importcert',
      '-noprompt',
      '-alias',
      'ca',
      '-file',
      'ca.pem',
      '-keystore',
      'truststore.p12',
      '-storetype',
      'PKCS12',
      '-storepass',
      storePassword,
    ],
    { cwd: dir, stdio: 'pipe' },
  );
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    clientCertFile: join(dir, 'client.pem'),
    clientKeyFile: join(dir, 'client.key'),
    brokerKeyStore: join(dir, 'broker.p12'),
    trustStore: join(dir, 'truststore.p12'),
    storePassword,
  };
}

/** Broker settings for an SSL listener that requires client certificates and a SASL_PLAINTEXT one with SCRAM. */
export function securityListenerSettings(tls: TestTlsMaterial): Record<string, string> {
  const scram = 'org.apache.kafka.common.security.scram.ScramLoginModule required;';
  return {
    'ssl.keystore.type': 'PKCS12',
    'ssl.keystore.location': tls.brokerKeyStore,
    'ssl.keystore.password': tls.storePassword,
    'ssl.key.password': tls.storePassword,
    'ssl.truststore.type': 'PKCS12',
    'ssl.truststore.location': tls.trustStore,
    'ssl.truststore.password': tls.storePassword,
    'listener.name.ssl.ssl.client.auth': 'required',
    'sasl.enabled.mechanisms': 'SCRAM-SHA-256,SCRAM-SHA-512',
    'listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config': scram,
    'listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config': scram,
  };
}
