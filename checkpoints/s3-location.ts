import { CheckpointConfigError } from './errors.ts';

/** Where checkpoints live in an S3-compatible store: `s3://bucket/prefix`. */
export interface S3Location {
  readonly bucket: string;
  /** Key prefix without leading or trailing `/`; '' for the bucket's root. */
  readonly prefix: string;
}

/** Connection settings of the S3 client, from the environment unless given. */
export interface S3ConnectionOptions {
  /** `CDCFLOW_S3_ENDPOINT` (S3Proxy, MinIO); unset: AWS's endpoint for the region. */
  readonly endpoint?: string;
  /** `AWS_REGION`. @default 'us-east-1' */
  readonly region?: string;
  /** `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`; unset: the SDK's default chain (profiles, instance roles). */
  readonly accessKeyId?: string;
  readonly secretAccessKey?: string;
  /** Path-style addressing (`endpoint/bucket/key`), which S3Proxy and MinIO need. @default true when an endpoint is set */
  readonly forcePathStyle?: boolean;
}

export function isS3Url(value: string): boolean {
  return value.startsWith('s3://');
}

/** Parses `s3://bucket/some/prefix`; throws `CheckpointConfigError` naming what is wrong. */
export function parseS3Url(url: string): S3Location {
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  const bucket = match?.[1];
  if (match === null || bucket === undefined || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new CheckpointConfigError(
      `checkpoint URL ${JSON.stringify(url)} is not s3://<bucket>/<prefix> with a valid bucket name (3-63 of a-z 0-9 . -)`,
    );
  }
  const prefix = (match[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((s) => s === '.' || s === '..') || prefix.includes('//')) {
    throw new CheckpointConfigError(
      `checkpoint URL ${JSON.stringify(url)}: the prefix must not contain empty, "." or ".." segments`,
    );
  }
  return { bucket, prefix };
}

/** Connection settings from `CDCFLOW_S3_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`. */
export function s3ConnectionFromEnv(env: NodeJS.ProcessEnv = process.env): S3ConnectionOptions {
  const pick = (name: string): string | undefined =>
    env[name] === undefined || env[name] === '' ? undefined : env[name];
  const endpoint = pick('CDCFLOW_S3_ENDPOINT');
  const region = pick('AWS_REGION') ?? pick('AWS_DEFAULT_REGION');
  const accessKeyId = pick('AWS_ACCESS_KEY_ID');
  const secretAccessKey = pick('AWS_SECRET_ACCESS_KEY');
  const pathStyle = pick('CDCFLOW_S3_PATH_STYLE');
  return {
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(region === undefined ? {} : { region }),
    ...(accessKeyId === undefined ? {} : { accessKeyId }),
    ...(secretAccessKey === undefined ? {} : { secretAccessKey }),
    ...(pathStyle === undefined ? {} : { forcePathStyle: pathStyle !== 'false' && pathStyle !== '0' }),
  };
}
