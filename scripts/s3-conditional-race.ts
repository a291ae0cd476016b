/**
 * Does an S3 server honour conditional PUTs when writers race? Each round, N clients create one
 * fresh key with `If-None-Match: *` at once (exactly one must win), then all overwrite it with
 * `If-Match: <the winner's ETag>` at once (exactly one must win). Prints the rounds that broke each.
 *
 *   npx tsx scripts/s3-conditional-race.ts http://127.0.0.1:19100 [rounds=40] [writers=8]
 * Keys go to `cdcflow/race/…` (bucket CDCFLOW_S3_BUCKET); keys from AWS_ACCESS_KEY_ID/SECRET (stack defaults).
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

const [endpoint = 'http://127.0.0.1:19100', rounds = '40', writers = '8'] = process.argv.slice(2);
const bucket = process.env['CDCFLOW_S3_BUCKET'] ?? 'cdcflow';
const clients = Array.from(
  { length: Number(writers) },
  () =>
    new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: {
        accessKeyId: process.env['AWS_ACCESS_KEY_ID'] ?? 'cdcflow',
        secretAccessKey: process.env['AWS_SECRET_ACCESS_KEY'] ?? 'cdcflow-secret',
      },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    }),
);

/** The new ETag, or undefined when the server refused the write. */
async function put(client: S3Client, key: string, condition: { IfNoneMatch: string } | { IfMatch: string }) {
  try {
    return (await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'x', ...condition }))).ETag;
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 412 || status === 409) return undefined;
    throw error;
  }
}

let brokenCreates = 0;
let brokenMatches = 0;
const started = Date.now();
for (let round = 0; round < Number(rounds); round++) {
  const key = `race/${started}-${round}`;
  const created = (await Promise.all(clients.map((c) => put(c, key, { IfNoneMatch: '*' })))).filter(Boolean);
  if (created.length !== 1) brokenCreates += 1;
  const etag = created[0];
  if (etag === undefined) continue;
  const matched = (await Promise.all(clients.map((c) => put(c, key, { IfMatch: etag })))).filter(Boolean);
  if (matched.length !== 1) brokenMatches += 1;
}
console.log(
  `${endpoint}: ${rounds} rounds x ${writers} writers: If-None-Match rounds with != 1 winner: ${brokenCreates}; ` +
    `If-Match rounds with != 1 winner: ${brokenMatches} (${Date.now() - started} ms)`,
);
for (const c of clients) c.destroy();
