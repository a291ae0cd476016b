import { describe, expect, it } from 'vitest';
import type { StackService } from '../../../scripts/stack/service.ts';
import { up } from '../../../scripts/stack/stack.ts';

const failing = (name: string, optional: boolean): StackService => ({
  name,
  port: 1,
  startTimeoutMs: 10,
  ...(optional ? { optional: true } : {}),
  install: () => Promise.reject(new Error('maven could not fetch the jar')),
  start: () => Promise.resolve(),
  ready: () => Promise.resolve(false),
});

describe('stack up with an optional service', () => {
  it('logs why an optional service was skipped and brings the rest up', async () => {
    const lines: string[] = [];
    await up([failing('s3proxy-conditional', true)], (line) => lines.push(line));
    expect(lines).toEqual([
      expect.stringMatching(/^s3proxy-conditional: skipped .*install failed: maven could not fetch the jar/),
    ]);
  });

  it('still fails the stack for a required one', async () => {
    await expect(up([failing('kafka', false)], () => undefined)).rejects.toThrow(/install failed/);
  });
});
