/**
 * Keys and the Lua script of the fenced batch protocol (README.md beside this file).
 *
 * Per sink instance `I` (`sinkInstanceName`) under `prefix`:
 *  - `<prefix>:__cdcflow:<I>:applied` — the fence: id of the last checkpoint applied;
 *  - `<prefix>:__cdcflow:<I>:staged:<n>` — checkpoint n's batch, a hash: data key → op;
 *  - `<prefix>:__cdcflow:<I>:staged` — sorted set of the checkpoint ids staged and not applied.
 * Op encoding (so the script needs no JSON): `d` = delete, `s<ttlMs>|<value>` = SET (ttl may be empty).
 */

export interface BatchKeys {
  readonly fence: string;
  readonly index: string;
  staged(checkpointId: number): string;
}

export function batchKeys(prefix: string, instance: string): BatchKeys {
  const base = `${prefix}:__cdcflow:${instance}`;
  return { fence: `${base}:applied`, index: `${base}:staged`, staged: (id) => `${base}:staged:${id}` };
}

export function encodeOp(value: string | null, ttlMs: number | undefined): string {
  return value === null ? 'd' : `s${ttlMs === undefined ? '' : String(ttlMs)}|${value}`;
}

/** Replies of {@link APPLY_SCRIPT} besides the count of applied entries. */
export const ALREADY_APPLIED = -1;
export const STAGED_BATCH_MISSING = -2;

/**
 * KEYS: fence, staged hash, index. ARGV: checkpoint id. Atomic: either the whole batch and the
 * new fence, or nothing. A checkpoint at or below the fence was applied before: skipped.
 * Data keys are not declared in KEYS, so this needs a standalone Redis (not Cluster).
 */
export const APPLY_SCRIPT = `
local n = tonumber(ARGV[1])
local applied = tonumber(redis.call('GET', KEYS[1]) or '0')
if applied >= n then
  redis.call('UNLINK', KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return ${ALREADY_APPLIED}
end
if redis.call('EXISTS', KEYS[2]) == 0 then return ${STAGED_BATCH_MISSING} end
local entries = redis.call('HGETALL', KEYS[2])
for i = 1, #entries, 2 do
  local key, op = entries[i], entries[i + 1]
  if op == 'd' then
    redis.call('DEL', key)
  else
    local bar = string.find(op, '|', 2, true)
    local ttl = string.sub(op, 2, bar - 1)
    if ttl == '' then
      redis.call('SET', key, string.sub(op, bar + 1))
    else
      redis.call('SET', key, string.sub(op, bar + 1), 'PX', ttl)
    end
  end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('UNLINK', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return #entries / 2
`;
