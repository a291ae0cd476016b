import { mkdirSync } from 'node:fs';
import { ensureDebianPackage } from '../debian.ts';
import { stackPorts } from '../endpoints.ts';
import { stackPaths } from '../paths.ts';
import { run, startDaemon } from '../process.ts';
import type { StackService } from '../service.ts';

const port = stackPorts.redis;

export const redisService: StackService = {
  name: 'redis',
  port,
  startTimeoutMs: 20_000,
  install: () => ensureDebianPackage('redis-server', 'redis-server'),
  start: async () => {
    const dir = stackPaths.data('redis');
    mkdirSync(dir, { recursive: true });
    // AOF with fsync every second: the Redis sink's fence (last applied checkpoint id) must survive
    // a Redis restart as well as our own, or a replayed batch could be applied twice.
    startDaemon({
      service: 'redis',
      command: 'redis-server',
      args: [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'everysec',
        '--save',
        '',
        '--daemonize',
        'no',
        '--protected-mode',
        'yes',
      ],
    });
  },
  ready: async () => {
    const reply = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'PING']).catch(() => '');
    return reply.trim() === 'PONG';
  },
};
