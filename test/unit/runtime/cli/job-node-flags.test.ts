import { describe, expect, it } from 'vitest';
import { JOB_NODE_FLAGS, jobNodeFlags } from '../../../../runtime/cli/job-node-flags.ts';

describe('job node flags', () => {
  it('gives a job process a larger young generation unless the user chose one', () => {
    expect(jobNodeFlags(undefined, [])).toEqual([...JOB_NODE_FLAGS]);
    expect(jobNodeFlags('--max-semi-space-size=8 --enable-source-maps', [])).toEqual([]);
    expect(jobNodeFlags(undefined, ['--import', 'tsx', '--max-semi-space-size=64'])).toEqual([]);
    expect(jobNodeFlags('--inspect', ['--import', 'tsx'])).toEqual(['--max-semi-space-size=32']);
  });
});
