/**
 * Redis mode's key layout and its Lua scripts: a row write that keeps the greater stamp (or the
 * smaller, for claim tables) and fans the winner out, and a sliding-window slot reservation.
 * Only commands Redis ≥ 7.0 and Valkey ≥ 7.2 both have.
 */
import { createHash } from "node:crypto";

/** Every key and channel of one cluster starts with this, so two clusters can share one Redis. */
export function keyPrefix(clusterName: string): string {
  return `pwdless-gs:${clusterName}:`;
}

export function redisNames(prefix: string) {
  return {
    rowPrefix: `${prefix}row:`,
    row: (table: string, key: string) => `${prefix}row:${table}:${key}`,
    rowPattern: `${prefix}row:*`,
    member: (nodeId: string) => `${prefix}member:${nodeId}`,
    memberPrefix: `${prefix}member:`,
    memberPattern: `${prefix}member:*`,
    claim: (name: string, key: string) => `${prefix}claim:${name}:${key}`,
    window: (name: string, key: string) => `${prefix}window:${name}:${key}`,
    recordsChannel: `${prefix}records`,
  };
}
export type RedisNames = ReturnType<typeof redisNames>;

export interface Script {
  source: string;
  sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash("sha1").update(source).digest("hex") };
}

/**
 * KEYS[1] the row hash (fields t, c, n: the stamp; r: the record's JSON).
 * ARGV: t, c, n, record JSON, "fww" | "lww", channel, tombstone TTL ms (0: none), "1" if a tombstone,
 * the version's release epoch (fww: see claimOrder in store.ts; fields e and d keep the held one's).
 * Returns 1 when written (and published), else the stored record's JSON, which the writer applies:
 * the same order as compareStamps in hlc.ts (t, then c, then the node id bytewise).
 */
export const WRITE_ROW = script(`
-- bytewise, as JavaScript compares these ASCII ids: Lua's < on strings follows the locale
local function bytewise(a, b)
  local len = math.min(#a, #b)
  for i = 1, len do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      if x < y then return -1 else return 1 end
    end
  end
  if #a == #b then return 0 elseif #a < #b then return -1 else return 1 end
end
local cur = redis.call('HMGET', KEYS[1], 't', 'c', 'n', 'r')
local t = tonumber(ARGV[1])
local c = tonumber(ARGV[2])
local n = ARGV[3]
if cur[1] then
  local ct = tonumber(cur[1])
  local cc = tonumber(cur[2])
  local cn = cur[3]
  local order = 0
  if t ~= ct then
    if t < ct then order = -1 else order = 1 end
  elseif c ~= cc then
    if c < cc then order = -1 else order = 1 end
  else
    order = bytewise(n, cn)
  end
  if ARGV[5] == 'fww' then
    -- claimOrder: the later release epoch, then a claim over its release, then the earlier claim
    local held = redis.call('HMGET', KEYS[1], 'e', 'd')
    local he = tonumber(held[1] or '0')
    local hdead = held[2] == '1'
    local ie = tonumber(ARGV[9] or '0')
    local idead = ARGV[8] == '1'
    local wins
    if ie ~= he then wins = ie > he
    elseif idead ~= hdead then wins = not idead
    elseif idead then wins = order > 0
    else wins = order < 0 end
    if not wins then return cur[4] end
  elseif order <= 0 then
    return cur[4]
  end
end
redis.call('HSET', KEYS[1], 't', ARGV[1], 'c', ARGV[2], 'n', n, 'r', ARGV[4], 'e', ARGV[9] or '0', 'd', ARGV[8])
if ARGV[8] == '1' and tonumber(ARGV[7]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
else
  redis.call('PERSIST', KEYS[1])
end
redis.call('PUBLISH', ARGV[6], ARGV[4])
return 1
`);

/**
 * KEYS[1] a sorted set of slot ids scored by time. ARGV: now ms, window ms, limit, slot id.
 * Returns {1, 0} when the slot is taken, {0, ms until the oldest slot leaves the window} when full:
 * the check and the count are one step, so concurrent requests on any node cannot overshoot.
 */
export const RESERVE_SLOT = script(`
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, math.max(1, tonumber(oldest[2]) + window - now)}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}
`);
