import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, environmentOptions, loadJobConfig } from '../../../../runtime/config/index.ts';
import { resolveOptions } from '../../../../runtime/job-options.ts';

const dir = mkdtempSync(join(tmpdir(), 'cdcflow-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const settings = z.object({
  topic: z.string().default('cdc.ecommerce.orders').meta({ env: 'CDCFLOW_TOPIC' }),
  bounded: z.boolean().default(false).meta({ env: 'CDCFLOW_BOUNDED' }),
  table: z
    .string()
    .regex(/^[a-z_]+$/)
    .default('orders_projection'),
});
const load = (environ: Record<string, string> = {}, argv: string[] = []) =>
  loadJobConfig({ name: 'orders', settings, environ, argv });
const errorOf = (f: () => unknown): ConfigError => {
  try {
    f();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
};

describe('job configuration', () => {
  it('defaults the checkpoint root to a folder that does not depend on the working directory', () => {
    expect(load().checkpoints.root).toBe(join(homedir(), '.local', 'state', 'cdcflow', 'checkpoints'));
    expect(load({ XDG_STATE_HOME: '/var/lib/x' }).checkpoints.root).toBe('/var/lib/x/cdcflow/checkpoints');
    expect(load({ CDCFLOW_HOME: '/srv/cdcflow', XDG_STATE_HOME: '/var/lib/x' }).checkpoints.root).toBe(
      '/srv/cdcflow/checkpoints',
    );
    expect(load({ CDCFLOW_HOME: '/srv/cdcflow' }).state.dir).toBe('/srv/cdcflow/state');
  });

  it('pins defect 1: environment options without a checkpoint dir resolve the same root from any working directory', () => {
    const cwd = process.cwd();
    // Where the job's files really go: the path as the filesystem resolves it in each directory.
    const first = resolve(resolveOptions({ jobName: 'orders' }).checkpointDir);
    try {
      process.chdir(dir);
      expect(resolve(resolveOptions({ jobName: 'orders' }).checkpointDir)).toBe(first);
      expect(resolveOptions({ jobName: 'orders', checkpoints: { dir: 'rel' } }).checkpointDir).toBe(join(dir, 'rel'));
    } finally {
      process.chdir(cwd);
    }
  });

  it('layers file < environment < flags, and converts strings to the field types', () => {
    const file = join(dir, 'layers.json');
    writeFileSync(
      file,
      JSON.stringify({
        parallelism: 2,
        checkpoints: { root: 'ck', intervalMs: 500 },
        settings: { topic: 'from-file', table: 'file_table' },
      }),
    );
    const config = load({ CDCFLOW_CONFIG: file, CDCFLOW_TOPIC: 'from-env', CDCFLOW_BOUNDED: '1' }, [
      '--parallelism',
      '3',
      '--set',
      'table=flag_table',
    ]);
    expect(config.parallelism).toBe(3);
    expect(config.checkpoints).toEqual({ root: join(dir, 'ck'), intervalMs: 500, timeoutMs: 60_000, retain: 3 }); // relative to the file
    expect(config.settings).toEqual({ topic: 'from-env', bounded: true, table: 'flag_table' });
    expect(config.name).toBe('orders');
  });

  it('maps the restore flags, and refuses two of them', () => {
    expect(load({}, ['--from-savepoint', 'before-upgrade']).restore).toEqual({ savepoint: 'before-upgrade' });
    expect(environmentOptions(load({}, ['--from-savepoint', 'before-upgrade'])).restore).toEqual({
      savepoint: 'before-upgrade',
    });
    expect(environmentOptions(load({}, ['--from-savepoint', '/abs/sp'])).restore).toEqual({ path: '/abs/sp' });
    expect(environmentOptions(load({}, ['--from-checkpoint', '12'])).restore).toEqual({ checkpointId: 12 });
    expect(environmentOptions(load({}, ['--fresh'])).restore).toBe('none');
    expect(load({}, []).restore).toBe('latest');
    expect(errorOf(() => load({}, ['--fresh', '--from-latest'])).message).toContain(
      'choose one of --from-latest, --fresh',
    );
  });

  it('names the field, the bad value and where it came from', () => {
    const env = errorOf(() => load({ CDCFLOW_CHECKPOINT_INTERVAL_MS: 'soon' }));
    expect(env.message).toMatch(
      /checkpoints\.intervalMs: .*expected number.*\(from CDCFLOW_CHECKPOINT_INTERVAL_MS=soon\)/,
    );
    const flag = errorOf(() => load({}, ['--parallelism', '0']));
    expect(flag.message).toMatch(/parallelism: Too small.*\(from flag --parallelism\)/);
    const file = join(dir, 'typo.json');
    writeFileSync(file, JSON.stringify({ checkpoints: { intervalMS: 5 }, settings: { table: 'Bad-Name' } }));
    const fromFile = errorOf(() => load({}, ['--config', file]));
    expect(fromFile.message).toContain(`checkpoints.intervalMS: unknown field (misspelt?) (from config file ${file})`);
    expect(fromFile.message).toContain('settings.table: Invalid string');
    expect(errorOf(() => load({ CDCFLOW_JOB_NAME: 'a/b' })).message).toMatch(
      /name: may use only letters.*\(from CDCFLOW_JOB_NAME=a\/b\)/,
    );
    expect(errorOf(() => load({ CDCFLOW_REST_TOKEN: 'short' })).message).toContain(
      'rest.token: must be at least 16 characters',
    );
  });

  it('refuses a misspelt setting instead of dropping it', () => {
    expect(errorOf(() => load({}, ['--set', 'tabel=x'])).message).toContain(
      'settings.tabel: unknown field (misspelt?) (from flag --set tabel)',
    );
  });

  it('rejects unknown flags with the list of known ones', () => {
    expect(errorOf(() => load({}, ['--paralelism', '2'])).message).toMatch(
      /Unknown option '--paralelism'.*--parallelism/,
    );
  });

  it('reports an unreadable or invalid file as such', () => {
    expect(errorOf(() => load({}, ['--config', join(dir, 'missing.json')])).message).toContain(
      'cannot read the configuration file',
    );
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ nope');
    expect(errorOf(() => load({}, ['--config', bad])).message).toContain('is not valid JSON');
  });

  it('turns into environment options', () => {
    const options = environmentOptions(load({ CDCFLOW_CHECKPOINT_DIR: '/ck', CDCFLOW_REST_PORT: '8081' }));
    expect(options).toMatchObject({
      jobName: 'orders',
      parallelism: 1,
      restore: 'latest',
      checkpoints: { dir: '/ck', intervalMs: 1000 },
      rest: { host: '127.0.0.1', port: 8081 },
    });
    // The REST API is on by default (any free port on loopback), so the CLI finds every job.
    expect(environmentOptions(load()).rest).toEqual({ host: '127.0.0.1', port: 0 });
    expect(environmentOptions(load({ CDCFLOW_REST_ENABLED: '0' })).rest).toEqual({ host: '127.0.0.1' });
  });
});

describe('defaults', () => {
  it('a configuration with nothing set and StreamEnvironment.create with nothing set run the job alike (one place per default)', () => {
    const environ = { CDCFLOW_HOME: dir };
    const previous = process.env['CDCFLOW_HOME'];
    process.env['CDCFLOW_HOME'] = dir;
    try {
      const fromConfig = resolveOptions(environmentOptions(loadJobConfig({ name: 'orders', environ, argv: [] })));
      const fromApi = resolveOptions({ jobName: 'orders' });
      const pick = (o: typeof fromApi) => ({
        checkpointIntervalMs: o.checkpointIntervalMs,
        checkpointTimeoutMs: o.checkpointTimeoutMs,
        retain: o.retain,
        checkpointDir: o.checkpointDir,
        stateBackend: o.stateBackend,
        stateDir: o.stateDir,
        restore: o.restore,
        host: o.rest.host,
        stopDeadlineMs: o.stopDeadlineMs,
        takeoverLease: o.takeoverLease,
        discardSinkTransactions: o.discardSinkTransactions,
        allowReplay: o.allowReplay,
        parallelism: o.parallelism,
      });
      expect(pick(fromConfig)).toEqual(pick(fromApi));
      expect(fromConfig.slo.windowSeconds).toBe(300);
    } finally {
      if (previous === undefined) delete process.env['CDCFLOW_HOME'];
      else process.env['CDCFLOW_HOME'] = previous;
    }
  });
});
