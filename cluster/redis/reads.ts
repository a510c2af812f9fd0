/**
 * What a Redis-mode node reads from Redis: every bucket's state, the members' heartbeat, and the
 * tables (SCAN on every primary, a page at a time, each step under a deadline, yielding between).
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type { ClusterStore } from "../store";
import type { PeerStatus } from "../types";
import type { BucketMeta } from "./buckets";
import { withDeadline, type RedisConnection } from "./connection";
import { parseMember, parseRecord } from "./messages";
import { BUCKETS, MEMBER_BEAT, type RedisNames } from "./scripts";

export async function readBucketMetas(conn: RedisConnection, names: RedisNames): Promise<BucketMeta[]> {
  const replies = await Promise.all(
    [...Array(BUCKETS).keys()].map((b) => conn.send(names.meta(b), ["HMGET", names.meta(b), "gen", "seq"])),
  );
  return replies.map((reply) => {
    const [gen, seq] = Array.isArray(reply) ? reply : [];
    return { gen: typeof gen === "string" ? gen : undefined, seq: Number(seq ?? 0) || 0 };
  });
}

export interface MemberView {
  members: PeerStatus[];
  /** rows each other member holds: who can re-seed a Redis that lost its data */
  rows: Map<string, number>;
}

/** Write this node's heartbeat entry (ttlMs 0: leave) and read the live members. */
export async function beatMembers(
  conn: RedisConnection,
  names: RedisNames,
  nodeId: string,
  about: string,
  ttlMs: number,
): Promise<MemberView> {
  const reply = await conn.run(MEMBER_BEAT, [names.members, names.memberExpiry], [nodeId, about, String(ttlMs)]);
  const flat = Array.isArray(reply) ? reply.map(String) : [];
  const members: PeerStatus[] = [];
  const rows = new Map<string, number>();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const id = flat[i]!;
    if (id === nodeId) continue;
    const entry = parseMember(flat[i + 1]!);
    rows.set(id, entry?.rows ?? 0);
    members.push({ id, connected: true, addresses: [], pingMs: null, meta: entry?.meta ?? {} });
  }
  return { members: members.sort((a, b) => (a.id < b.id ? -1 : 1)), rows };
}

/** Apply every row Redis holds; resolves to how many changed this node's tables. */
export async function readRows(
  conn: RedisConnection,
  names: RedisNames,
  store: ClusterStore,
  options: { scanCount: number; timeoutMs: number; stopping(): boolean },
): Promise<number> {
  let applied = 0;
  const ms = options.timeoutMs;
  const pages = conn.scan(names.rowPattern, options.scanCount)[Symbol.asyncIterator]();
  while (!options.stopping()) {
    const page = await withDeadline(pages.next(), ms, "SCAN");
    if (page.done) break;
    const keys = page.value;
    if (keys.length > 0) {
      const values = await withDeadline(Promise.all(keys.map((key) => conn.send(key, ["HGET", key, "r"]))), ms, "HGET");
      for (const value of values) {
        const record = typeof value === "string" ? parseRecord(value) : undefined;
        if (record && store.applyRemote(record, "sync") === "applied") applied += 1;
      }
    }
    await yieldToEventLoop();
  }
  return applied;
}
