import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ListObjectsV2CommandOutput, S3Client } from '@aws-sdk/client-s3';
import { CdcflowError } from '../state/errors.ts';
import { forEachLimited, type ObjectStore } from './object-store.ts';
import type { S3ConnectionOptions } from './s3-location.ts';

/** Parallel single-object deletes: S3Proxy rejects the SDK's checksummed multi-object delete. */
const DELETE_CONCURRENCY = 8;

type Sdk = typeof import('@aws-sdk/client-s3');

/**
 * `ObjectStore` over `@aws-sdk/client-s3`, for AWS S3 and S3-compatible servers (S3Proxy, MinIO).
 * The SDK is imported on first use: a job with local checkpoints never loads it.
 */
export class S3ObjectStore implements ObjectStore {
  readonly url: string;
  private connection: Promise<{ client: S3Client; sdk: Sdk }> | undefined;
  private conditional: Promise<'supported' | 'ignored'> | undefined;

  constructor(
    private readonly bucket: string,
    private readonly options: S3ConnectionOptions,
  ) {
    this.url = `s3://${bucket}`;
  }

  private connect(): Promise<{ client: S3Client; sdk: Sdk }> {
    this.connection ??= import('@aws-sdk/client-s3').then((sdk) => ({ sdk, client: this.createClient(sdk) }));
    return this.connection;
  }

  private createClient(sdk: Sdk): S3Client {
    const connection = this.options;
    const hasKeys = connection.accessKeyId !== undefined && connection.secretAccessKey !== undefined;
    // The SDK warns once per process that releases after January 2027 need Node 22; package.json
    // pins a release that runs on Node 20, so the warning would only clutter every job's log.
    process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
    return new sdk.S3Client({
      region: connection.region ?? 'us-east-1',
      ...(connection.endpoint === undefined ? {} : { endpoint: connection.endpoint }),
      forcePathStyle: connection.forcePathStyle ?? connection.endpoint !== undefined,
      ...(hasKeys
        ? {
            credentials: {
              accessKeyId: connection.accessKeyId as string,
              secretAccessKey: connection.secretAccessKey as string,
            },
          }
        : {}),
      // Newer SDKs add CRC32 checksum headers S3Proxy and older MinIO refuse ("NotImplemented").
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async put(key: string, body: string | Buffer): Promise<void> {
    const { client, sdk } = await this.connect();
    await client.send(
      new sdk.PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: Buffer.byteLength(body) }),
    );
  }

  async putIfAbsent(key: string, body: string | Buffer): Promise<boolean> {
    const { client, sdk } = await this.connect();
    // The HEAD is the whole guard on a store that ignores If-None-Match, and saves a PUT elsewhere.
    if (await this.exists(key)) return false;
    try {
      await client.send(
        new sdk.PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentLength: Buffer.byteLength(body),
          IfNoneMatch: '*',
        }),
      );
      return true;
    } catch (error) {
      if (statusOf(error) === 412 || statusOf(error) === 409) return false;
      throw error;
    }
  }

  async upload(key: string, path: string): Promise<void> {
    const { client, sdk } = await this.connect();
    const { size } = await stat(path);
    await client.send(
      new sdk.PutObjectCommand({ Bucket: this.bucket, Key: key, Body: createReadStream(path), ContentLength: size }),
    );
  }

  async getText(key: string): Promise<string | undefined> {
    const { client, sdk } = await this.connect();
    try {
      const response = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return await (response.Body as { transformToString(): Promise<string> }).transformToString();
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async download(key: string, path: string): Promise<boolean> {
    const { client, sdk } = await this.connect();
    let body: Readable;
    try {
      const response = await client.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: key }));
      body = response.Body as Readable;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
    await mkdir(dirname(path), { recursive: true });
    const temp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      await pipeline(body, createWriteStream(temp));
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    return true;
  }

  async exists(key: string): Promise<boolean> {
    const { client, sdk } = await this.connect();
    try {
      await client.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const page of this.listPages(prefix))
      // jclouds' filesystem provider (S3Proxy) lists folders as `dir/` objects; they are not ours.
      for (const object of page.Contents ?? [])
        if (object.Key !== undefined && !object.Key.endsWith('/')) keys.push(object.Key);
    return keys;
  }

  async listFolders(prefix: string): Promise<string[]> {
    const folders: string[] = [];
    for await (const page of this.listPages(prefix, '/'))
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix !== undefined) folders.push(p.Prefix);
    return folders;
  }

  /** Every page of a ListObjectsV2 under `prefix`, following continuation tokens. */
  private async *listPages(prefix: string, delimiter?: string): AsyncGenerator<ListObjectsV2CommandOutput> {
    const { client, sdk } = await this.connect();
    let token: string | undefined;
    do {
      const page = await client.send(
        new sdk.ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix,
          ...(delimiter === undefined ? {} : { Delimiter: delimiter }),
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
      );
      yield page;
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async copy(fromKey: string, toKey: string): Promise<void> {
    const { client, sdk } = await this.connect();
    const source = `${this.bucket}/${fromKey.split('/').map(encodeURIComponent).join('/')}`;
    await client.send(new sdk.CopyObjectCommand({ Bucket: this.bucket, Key: toKey, CopySource: source }));
  }

  async delete(keys: readonly string[]): Promise<void> {
    const { client, sdk } = await this.connect();
    await forEachLimited(keys, DELETE_CONCURRENCY, async (key) => {
      try {
        await client.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
    });
  }

  conditionalWrites(underPrefix = ''): Promise<'supported' | 'ignored'> {
    this.conditional ??= this.probeConditionalWrites(underPrefix).catch((error: unknown) => {
      this.conditional = undefined; // a denied probe is not a property of the store: ask again next time
      throw objectStoreAccessError(error, this.bucket, underPrefix) ?? error;
    });
    return this.conditional;
  }

  /** Writes one probe object twice with If-None-Match: * and sees whether the second write was refused. */
  private async probeConditionalWrites(underPrefix: string): Promise<'supported' | 'ignored'> {
    const { client, sdk } = await this.connect();
    const prefix = underPrefix === '' || underPrefix.endsWith('/') ? underPrefix : `${underPrefix}/`;
    const key = `${prefix}.cdcflow-probe/${randomBytes(8).toString('hex')}`;
    const put = (): Promise<unknown> =>
      client.send(new sdk.PutObjectCommand({ Bucket: this.bucket, Key: key, Body: 'probe', IfNoneMatch: '*' }));
    try {
      await put();
      try {
        await put();
        return 'ignored';
      } catch (error) {
        if (statusOf(error) === 412 || statusOf(error) === 409) return 'supported';
        throw error;
      }
    } finally {
      await this.delete([key]).catch(() => undefined);
    }
  }

  async destroy(): Promise<void> {
    if (this.connection !== undefined) (await this.connection).client.destroy();
  }
}

/** The store refused us (credentials, permissions, bucket): what to fix, as a typed error. */
export class ObjectStoreAccessError extends CdcflowError {
  constructor(message: string, cause: unknown) {
    super(message, { domain: 'user', retriable: false, cause });
  }
}

const CREDENTIAL_ERRORS = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'CredentialsProviderError',
  'ExpiredToken',
  'InvalidToken',
]);

/** An ObjectStoreAccessError for an SDK error that says we may not write under `prefix`, else undefined. */
export function objectStoreAccessError(
  error: unknown,
  bucket: string,
  prefix: string,
): ObjectStoreAccessError | undefined {
  const name = (error as { name?: unknown } | null)?.name;
  const where = `s3://${bucket}/${prefix}`;
  if (name === 'NoSuchBucket')
    return new ObjectStoreAccessError(
      `bucket '${bucket}' does not exist on this S3 endpoint: create it, or fix the bucket in the checkpoint URL (${where})`,
      error,
    );
  if (typeof name === 'string' && CREDENTIAL_ERRORS.has(name))
    return new ObjectStoreAccessError(
      `the S3 store refused our credentials (${name}) writing under ${where}: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the role) and CDCFLOW_S3_ENDPOINT / AWS_REGION`,
      error,
    );
  if (name === 'AccessDenied' || statusOf(error) === 403)
    return new ObjectStoreAccessError(
      `access denied writing under ${where}: the credentials need s3:PutObject, s3:GetObject, s3:ListBucket and s3:DeleteObject on that prefix`,
      error,
    );
  return undefined;
}

function statusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

function isMissing(error: unknown): boolean {
  const name = (error as { name?: unknown } | null)?.name;
  return statusOf(error) === 404 || name === 'NoSuchKey' || name === 'NotFound';
}
