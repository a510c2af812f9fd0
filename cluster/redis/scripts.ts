/**
 * Redis mode's key layout and its Lua scripts. Rows are spread over BUCKETS hash-tagged buckets
 * (one Redis Cluster slot each): a bucket's rows, its state hash (generation and write sequence)
 * and its sharded pub/sub channel share one slot, so every script touches one slot only and
 * works the same on a standalone Redis, behind Sentinel, and on a Redis Cluster.
 * Only commands Redis ≥ 7.0 and Valkey ≥ 7.2 both have.
 */
import { createHash } from "node:crypto";

/** Rows, claims and channels are spread over this many buckets (hash tags). */
export const BUCKETS = 16;

/** Every key and channel of one cluster starts with this, so two clusters can share one Redis. */
export function keyPrefix(clusterName: string): string {
  return `pwdless-gs:${clusterName}:`;
}

/** The bucket of a row (or a claim): FNV-1a of `table \0 key`, the same on every node. */
export function bucketOf(table: string, key: string): number {
  let hash = 0x811c9dc5;
  const text = `${table}\u0000${key}`;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % BUCKETS;
}

/** The replicated table single-use claims live in, so a Redis restarted empty gets them back. */
export const CLAIMS_TABLE = "onceClaims";

export function redisNames(clusterName: string) {
  const prefix = keyPrefix(clusterName);
  // `{…}` is the hash tag: everything of one bucket lands in one Cluster slot
  const tag = (b: number) => `${prefix}{${clusterName}.${b}}:`;
  const members = `${prefix}{${clusterName}.members}:`;
  return {
    prefix,
    row: (table: string, key: string) => `${tag(bucketOf(table, key))}row:${table}:${key}`,
    /** every row key of this cluster, whatever its bucket (SCAN's MATCH; `{` is not special there) */
    rowPattern: `${prefix}{*}:row:*`,
    /** the row layout before buckets (read once, to move its rows over) */
    legacyRowPattern: `${prefix}row:*`,
    /** any key in bucket `b` (the permission check at start) */
    inBucket: (b: number, rest: string) => `${tag(b)}${rest}`,
    /** a bucket's state: `gen` (set once re-seeded), `seq` (grows with every row write) */
    meta: (b: number) => `${tag(b)}meta`,
    channel: (b: number) => `${tag(b)}records`,
    window: (name: string, key: string) => `${tag(bucketOf(name, key))}window:${name}:${key}`,
    /** heartbeats: a hash of members and a sorted set of their expiry (Redis's clock) */
    members: `${members}members`,
    memberExpiry: `${members}expiry`,
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

/** Writes refused because the bucket has no generation: Redis lost its data and is re-seeded. */
export const UNSEEDED = "UNSEEDED";

const GATE = `
if ARGV[1] ~= 's' and redis.call('HEXISTS', KEYS[2], 'gen') == 0 then
  return redis.error_reply('${UNSEEDED} this Redis holds no generation for the bucket: it is being re-seeded')
end`;

/**
 * KEYS[1] the row hash (t, c, n: the stamp; r: the record's JSON; e: its release epoch; d: 1 for
 * a tombstone), KEYS[2] its bucket's state hash.
 * ARGV: mode ('w' a write; 's' a re-seed, allowed before the bucket has a generation), t, c, n,
 * record JSON, 'fww' | 'lww', channel, expire-at ms (0: kept), '1' if a tombstone, the version's
 * release epoch (fww: see claimOrder in store.ts, which this follows exactly).
 * Returns the write's sequence number (> 0) when written (and published as `seq|json`); else,
 * for a write, the stored record's JSON, which the writer applies; for a re-seed, 0.
 * The order is that of compareStamps in hlc.ts (t, then c, then the node id bytewise).
 */
export const WRITE_ROW = script(`${GATE}
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
local cur = redis.call('HMGET', KEYS[1], 't', 'c', 'n', 'r', 'e', 'd')
local t = tonumber(ARGV[2])
local c = tonumber(ARGV[3])
local n = ARGV[4]
if cur[1] then
  local ct = tonumber(cur[1])
  local cc = tonumber(cur[2])
  local order = 0
  if t ~= ct then
    if t < ct then order = -1 else order = 1 end
  elseif c ~= cc then
    if c < cc then order = -1 else order = 1 end
  else
    order = bytewise(n, cur[3])
  end
  local wins
  if ARGV[6] == 'fww' then
    -- claimOrder: the later release epoch, then a claim over its release, then the earlier claim
    local he = tonumber(cur[5] or '0')
    local hdead = cur[6] == '1'
    local ie = tonumber(ARGV[10] or '0')
    local idead = ARGV[9] == '1'
    if ie ~= he then wins = ie > he
    elseif idead ~= hdead then wins = not idead
    elseif idead then wins = order > 0
    else wins = order < 0 end
  else
    wins = order > 0
  end
  if not wins then
    if ARGV[1] == 's' then return 0 end
    return cur[4]
  end
end
redis.call('HSET', KEYS[1], 't', ARGV[2], 'c', ARGV[3], 'n', n, 'r', ARGV[5], 'e', ARGV[10] or '0', 'd', ARGV[9])
if tonumber(ARGV[8]) > 0 then
  redis.call('PEXPIREAT', KEYS[1], ARGV[8])
else
  redis.call('PERSIST', KEYS[1])
end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
redis.call('SPUBLISH', ARGV[7], seq .. '|' .. ARGV[5])
return seq
`);

/**
 * A single-use claim, kept as a row of CLAIMS_TABLE so it is replicated to every node and put
 * back by a re-seed. KEYS[1] the claim's row, KEYS[2] its bucket's state.
 * ARGV: 'w', t, c, n, record JSON, channel, expire-at ms.
 * Returns the sequence number when this caller is first; 0 when a live claim exists.
 */
export const CLAIM_ONCE = script(`${GATE}
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HGET', KEYS[1], 'd') ~= '1' then return 0 end
redis.call('HSET', KEYS[1], 't', ARGV[2], 'c', ARGV[3], 'n', ARGV[4], 'r', ARGV[5], 'd', '0')
redis.call('PEXPIREAT', KEYS[1], ARGV[7])
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
redis.call('SPUBLISH', ARGV[6], seq .. '|' .. ARGV[5])
return seq
`);

/**
 * KEYS[1] a sorted set of slot ids scored by time, KEYS[2] its bucket's state.
 * ARGV: 'w', now ms, window ms, limit, slot id.
 * Returns {1, 0} when the slot is taken, {0, ms until the oldest slot leaves the window} when full:
 * the check and the count are one step, so concurrent requests on any node cannot overshoot.
 */
export const RESERVE_SLOT = script(`${GATE}
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, math.max(1, tonumber(oldest[2]) + window - now)}
end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}
`);

/**
 * Open a re-seeded bucket: KEYS[1] its state hash, ARGV[1] the generation to set when it has
 * none. Returns {generation, seq}: the first seeder's generation wins, later ones adopt it.
 */
export const SET_GENERATION = script(`
redis.call('HSETNX', KEYS[1], 'gen', ARGV[1])
return redis.call('HMGET', KEYS[1], 'gen', 'seq')
`);

/**
 * A heartbeat: KEYS[1] the members hash, KEYS[2] their expiry (a sorted set, Redis's own clock,
 * so the nodes' clocks do not matter). ARGV: node id, its JSON, time to live ms ('0': leave).
 * Drops the expired members and returns the live ones as a flat list: id, JSON, id, JSON, …
 */
export const MEMBER_BEAT = script(`
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if ARGV[3] == '0' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[1], ARGV[1])
  return {}
end
redis.call('ZADD', KEYS[2], ms + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ms)
for _, id in ipairs(gone) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[1], id)
end
return redis.call('HGETALL', KEYS[1])
`);

/**
 * The permission check at start: runs as EVAL (so a user without +@scripting fails here) and
 * asks Redis's ACL about every other command the node sends, on keys and channels of the
 * cluster's own prefix. KEYS: a row, its state hash, a members key. ARGV[1] a channel.
 * Returns the commands this user may not run (empty: everything is allowed).
 */
export const PERMISSIONS = script(`
local checks = {
  {'EVALSHA', '${"0".repeat(40)}', '1', KEYS[1]},
  {'HMGET', KEYS[1], 't'}, {'HGET', KEYS[1], 'r'}, {'HSET', KEYS[1], 't', '1'}, {'EXISTS', KEYS[1]},
  {'PEXPIREAT', KEYS[1], '1'}, {'PEXPIRE', KEYS[1], '1'}, {'PERSIST', KEYS[1]}, {'DEL', KEYS[1]},
  {'HINCRBY', KEYS[2], 'seq', '1'}, {'HSETNX', KEYS[2], 'gen', 'x'}, {'HEXISTS', KEYS[2], 'gen'},
  {'ZADD', KEYS[3], '1', 'x'}, {'ZREMRANGEBYSCORE', KEYS[3], '0', '1'}, {'ZCARD', KEYS[3]},
  {'ZRANGE', KEYS[3], '0', '0'}, {'ZRANGEBYSCORE', KEYS[3], '0', '1'}, {'ZREM', KEYS[3], 'x'},
  {'HGETALL', KEYS[3]}, {'HDEL', KEYS[3], 'x'}, {'TIME'},
  {'SPUBLISH', ARGV[1], 'x'}, {'SSUBSCRIBE', ARGV[1]},
  {'SCAN', '0'}, {'PING'}, {'WAIT', '0', '0'}, {'INFO', 'replication'},
}
local denied = {}
for _, check in ipairs(checks) do
  if not redis.acl_check_cmd(unpack(check)) then table.insert(denied, check[1]) end
end
return denied
`);
