/**
 * Replay gate (runtime/lifecycle/replay-gate.ts): a job with an at-least-once sink that has side
 * effects records the checkpoints the sink committed; restoring an older one is refused, naming
 * how many records would be sent again, unless allowReplay.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StreamEnvironment, type SinkDefinition } from '../../../runtime/index.ts';
import { ReplayRefusedError, SIDE_EFFECT_SINKS_FILE } from '../../../runtime/lifecycle/replay-gate.ts';
import { countingSource } from '../../support/counting-source.ts';
import { quietEnvironment } from '../../support/quiet-job.ts';

const root = mkdtempSync(join(tmpdir(), 'cdcflow-replay-gate-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const webhook: SinkDefinition<number> = {
  name: 'webhook',
  kind: 'http',
  replaySafety: 'at-least-once',
  sideEffects: true,
  createOperator: () => ({ processBatch: () => undefined }),
};

function job(restore: 'none' | { checkpointId: number }, allowReplay = false): StreamEnvironment {
  const env = quietEnvironment(root, 'gated', { checkpoints: { intervalMs: 100, retain: 20 }, restore, allowReplay });
  env
    .fromSource(countingSource({ split: 't:0' }), { uid: 'numbers' })
    .sinkTo(webhook)
    .uid('webhook');
  return env;
}

const recorded = () => {
  const path = join(root, 'gated', SIDE_EFFECT_SINKS_FILE);
  return existsSync(path)
    ? (JSON.parse(readFileSync(path, 'utf8')) as {
        sinks: Record<string, { checkpointId: number; positions: Record<string, string> }>;
      })
    : undefined;
};

describe('replay gate for at-least-once sinks with side effects', () => {
  it('refuses to restore a checkpoint older than the sink’s last commit, unless allowReplay', async () => {
    const first = job('none');
    const done = first.execute();
    for (let i = 0; i < 200 && (recorded()?.sinks['webhook']?.checkpointId ?? 0) < 4; i++)
      await new Promise((r) => setTimeout(r, 50));
    await first.stop();
    await done;
    const last = recorded()?.sinks['webhook'];
    expect(last?.checkpointId).toBeGreaterThanOrEqual(4);
    expect(Number(last?.positions['numbers/t:0'])).toBeGreaterThan(0);

    const refused = await job({ checkpointId: 1 })
      .execute()
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(refused).toBeInstanceOf(ReplayRefusedError);
    expect((refused as ReplayRefusedError).resend).toBeGreaterThan(0n);
    expect((refused as Error).message).toMatch(
      /refusing to replay into sink 'webhook' .* would send \d+ records to it again.*--allow-replay/,
    );

    const allowed = job({ checkpointId: 1 }, true);
    const run = allowed.execute();
    await new Promise((r) => setTimeout(r, 500));
    await allowed.cancel();
    await run.catch(() => undefined);
  }, 30_000);
});
