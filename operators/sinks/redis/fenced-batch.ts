/**
 * Keys and the Lua scripts of the fenced batch protocol (README.md beside this file).
 *
 * Per sink instance `I` (`sinkInstanceName`) under `prefix`:
 *  - `<prefix>:__cdcflow:<I>:applied` — the fence: id of the last checkpoint applied;
 *  - `<prefix>:__cdcflow:<I>:staged:<n>` — checkpoint n's batch, a hash: data key → op
 *    (`staged:<n>@e<epoch>` when staged by owner epoch `epoch` in group mode, so a zombie's stage
 *    never mixes into the new owner's batch of the same checkpoint id);
 *  - `<prefix>:__cdcflow:<I>:staged` — sorted set of the checkpoint ids staged and not applied
 *    (members `<n>` or `<n>@e<epoch>`);
 *  - `<prefix>:__cdcflow:<I>:epoch` — group mode: the owner epoch that may apply (only raised).
 * Op encoding (so the script needs no JSON): `d` = delete, `s<ttlMs>|<value>` = SET (ttl may be empty).
 */

export interface BatchKeys {
  readonly fence: string;
  readonly index: string;
  readonly epoch: string;
  staged(checkpointId: number, epoch?: number): string;
  /** The index member of a staged batch. */
  member(checkpointId: number, epoch?: number): string;
}

export function batchKeys(prefix: string, instance: string): BatchKeys {
  const base = `${prefix}:__cdcflow:${instance}`;
  const member = (id: number, epoch?: number) => (epoch === undefined ? String(id) : `${id}@e${epoch}`);
  return {
    fence: `${base}:applied`,
    index: `${base}:staged`,
    epoch: `${base}:epoch`,
    staged: (id, epoch) => `${base}:staged:${member(id, epoch)}`,
    member,
  };
}

/** The checkpoint id of an index member (`<n>` or `<n>@e<epoch>`). */
export function checkpointOfMember(member: string): number {
  return Number.parseInt(member, 10);
}

export function encodeOp(value: string | null, ttlMs: number | undefined): string {
  return value === null ? 'd' : `s${ttlMs === undefined ? '' : String(ttlMs)}|${value}`;
}

/** Replies of {@link APPLY_SCRIPT} besides the count of applied entries. */
export const ALREADY_APPLIED = -1;
export const STAGED_BATCH_MISSING = -2;
/** The epoch key holds another owner epoch than ours: a newer owner claimed the partition. */
export const EPOCH_FENCED = -3;

/**
 * KEYS: fence, staged hash, index, epoch. ARGV: checkpoint id, index member, owner epoch ('' outside
 * group mode: no epoch check). Atomic: either the whole batch and the new fence, or nothing. In
 * group mode a batch is applied only while the epoch key equals ours, checked first: an older
 * owner (a zombie) changes nothing, not even the staged batch. A checkpoint at or below the fence
 * was applied before: skipped. Data keys are not declared in KEYS, so this needs a standalone
 * Redis (not Cluster).
 */
export const APPLY_SCRIPT = `
if ARGV[3] ~= '' and tonumber(redis.call('GET', KEYS[4]) or '0') ~= tonumber(ARGV[3]) then
  return ${EPOCH_FENCED}
end
local n = tonumber(ARGV[1])
local applied = tonumber(redis.call('GET', KEYS[1]) or '0')
if applied >= n then
  redis.call('UNLINK', KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
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
redis.call('ZREM', KEYS[3], ARGV[2])
return #entries / 2
`;

/**
 * KEYS: epoch. ARGV: owner epoch. Raises the epoch key to ours, never lowers it: replies 0 when
 * the key now holds ours, else the newer epoch that holds it.
 */
export const CLAIM_SCRIPT = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local ours = tonumber(ARGV[1])
if current > ours then return current end
redis.call('SET', KEYS[1], ARGV[1])
return 0
`;
