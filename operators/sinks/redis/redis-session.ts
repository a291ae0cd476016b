/**
 * The only Redis surface the Redis sink uses. ioredis sits behind it, so another client (or a
 * fake) can replace it.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { CdcflowError } from '../../../state/errors.ts';

export type RedisArg = string | number;

export interface RedisSession {
  /** One command; resolves with Redis's reply. */
  call(command: string, ...args: RedisArg[]): Promise<unknown>;
  /** Several commands in one round trip (not atomic); rejects if any failed. */
  pipeline(commands: readonly (readonly [string, ...RedisArg[]])[]): Promise<unknown[]>;
  /** EVALSHA, loading the script on NOSCRIPT. */
  evalScript(script: string, keys: readonly string[], args: readonly RedisArg[]): Promise<unknown>;
  close(): Promise<void>;
}

export type RedisConnect = () => Promise<RedisSession>;

/** Thrown when the Redis sink cannot stage or apply a batch. */
export class RedisSinkError extends CdcflowError {
  constructor(
    message: string,
    options: { domain?: 'user' | 'external' | 'internal'; retriable?: boolean; cause?: unknown } = {},
  ) {
    super(message, {
      domain: options.domain ?? 'external',
      retriable: options.retriable ?? true,
      cause: options.cause,
    });
  }
}

/** ioredis per session. `url` defaults to `REDIS_URL`. */
export function ioredisConnect(url: string | undefined = process.env['REDIS_URL']): RedisConnect {
  if (url === undefined)
    throw new RedisSinkError('redisSink needs a connection: pass url or connect, or set REDIS_URL', {
      domain: 'user',
      retriable: false,
    });
  return async () => {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 3 });
    redis.on('error', () => undefined); // surfaces on the next command; unhandled it would crash the process
    await redis.connect();
    const shas = new Map<string, string>();
    return {
      call: (command, ...args) => redis.call(command, ...args),
      pipeline: async (commands) => {
        const batch = redis.pipeline();
        for (const [command, ...args] of commands) void batch.call(command, ...args);
        const results = (await batch.exec()) ?? [];
        const failed = results.find(([error]) => error !== null);
        if (failed !== undefined) throw failed[0] as Error;
        return results.map(([, reply]) => reply);
      },
      evalScript: async (script, keys, args) => {
        let sha = shas.get(script);
        if (sha === undefined) shas.set(script, (sha = createHash('sha1').update(script).digest('hex')));
        try {
          return await redis.call('EVALSHA', sha, keys.length, ...keys, ...args);
        } catch (error) {
          if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
          return await redis.call('EVAL', script, keys.length, ...keys, ...args);
        }
      },
      close: async () => {
        await redis.quit().catch(() => redis.disconnect());
      },
    };
  };
}
