/**
 * The bearer token of a job's REST API. Mutating calls always need one: a configured token
 * (`rest.token`, `rest.tokenFile`), or, on a loopback address only, a random one written next to
 * the job's checkpoints with mode 0600, so whoever may read the checkpoint root may drive the job.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CdcflowError } from '../../state/errors.ts';
import { writePrivateFile } from './private-file.ts';

export const TOKEN_FILE = 'rest-token';

/** How a client finds the token: a file to read, or the one the operator configured (CDCFLOW_REST_TOKEN). */
export type TokenReference = { readonly file: string } | { readonly configured: true };

export interface RestToken {
  readonly token: string;
  readonly reference: TokenReference;
}

export class RestConfigError extends CdcflowError {
  constructor(message: string) {
    super(message, { domain: 'user', retriable: false });
  }
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export async function resolveRestToken(o: {
  host: string;
  token: string | undefined;
  tokenFile: string | undefined;
  jobDir: string;
}): Promise<RestToken> {
  if (o.token !== undefined) return { token: o.token, reference: { configured: true } };
  if (o.tokenFile !== undefined) {
    const token = (await readFile(o.tokenFile, 'utf8')).trim();
    if (token.length < 16)
      throw new RestConfigError(
        `the REST token in ${o.tokenFile} (rest.tokenFile) is shorter than 16 characters: write a longer random one`,
      );
    return { token, reference: { file: o.tokenFile } };
  }
  if (!isLoopback(o.host)) {
    throw new RestConfigError(
      `refusing to serve the REST API on ${o.host} without a token: anyone reaching it could stop the job. Set rest.token (CDCFLOW_REST_TOKEN) or rest.tokenFile, or bind to 127.0.0.1`,
    );
  }
  const token = randomBytes(24).toString('base64url');
  const file = join(o.jobDir, TOKEN_FILE);
  await writePrivateFile(file, `${token}\n`);
  return { token, reference: { file } };
}

/** Constant-time check of an `Authorization: Bearer <token>` header. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  if (match === null) return false;
  const given = Buffer.from(match[1] as string);
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
