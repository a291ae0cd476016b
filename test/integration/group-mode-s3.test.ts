/**
 * group-mode.test.ts again, with the checkpoint root and the partition claims in the stack's
 * conditional-write S3 store (S3Proxy 4.1.0, CDCFLOW_S3_CONDITIONAL_ENDPOINT): issue 14's proof
 * with checkpoints in object storage. Skipped when that optional service is not up.
 */
import { describe, it } from 'vitest';

if (process.env['CDCFLOW_S3_CONDITIONAL_ENDPOINT'] === undefined) {
  describe('group mode with checkpoints and claims in S3', () => {
    it.skip('needs the conditional-write S3 store (npm run stack -- up s3proxy-conditional)', () => undefined);
  });
} else {
  process.env['CDCFLOW_GROUP_MODE_S3'] = '1';
  await import('./group-mode.test.ts');
}
