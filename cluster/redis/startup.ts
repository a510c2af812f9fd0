/**
 * What a Redis-mode node checks and moves once at start: the Redis user's permissions (one line
 * when one is missing), and the rows of the key layout before buckets.
 */
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type { ClusterStore } from "../store";
import type { Logger, RedisSettings } from "../types";
import { withDeadline, type RedisConnection } from "./connection";
import { describeMissingPermissions, describeRedisError, RedisStartError } from "./errors";
import { parseRecord } from "./messages";
import { BUCKETS, PERMISSIONS, type RedisNames } from "./scripts";

/** Ask Redis's ACL about every command the node sends, on every primary of a Cluster (ACLs are per server). */
export async function checkPermissions(
  conn: RedisConnection,
  names: RedisNames,
  settings: RedisSettings,
  where: string,
): Promise<void> {
  const denied = new Set<string>();
  const buckets = conn.kind === "cluster" ? [...Array(BUCKETS).keys()] : [0];
  for (const b of buckets) {
    const keys = [names.inBucket(b, "row:_permissions"), names.meta(b), names.inBucket(b, "window:_permissions")];
    try {
      // EVAL, not EVALSHA: a user without +@scripting is refused right here
      const reply = await withDeadline(
        conn.send(keys[0], ["EVAL", PERMISSIONS.source, "3", ...keys, names.channel(b)]),
        settings.timeoutMs,
        "the permission check",
      );
      if (Array.isArray(reply)) for (const name of reply) denied.add(String(name));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const command = /NOPERM.*'([a-z|]+)' command/i.exec(message)?.[1];
      if (command) denied.add(command);
      else if (/NOPERM/.test(message)) denied.add(`keys or channels under ${names.prefix}*`);
      else throw new RedisStartError(describeRedisError(error, settings));
    }
  }
  if (denied.size > 0) throw new RedisStartError(describeMissingPermissions([...denied], where));
}

/**
 * Rows of the key layout before buckets (standalone and Sentinel): read into memory at start, so
 * the re-seed that follows writes them into the buckets; their old keys are deleted after it.
 */
export class LegacyRows {
  private keys: string[] = [];

  constructor(
    private readonly conn: RedisConnection,
    private readonly names: RedisNames,
    private readonly timeoutMs: number,
  ) {}

  get pending(): boolean {
    return this.keys.length > 0;
  }

  async read(store: ClusterStore, scanCount: number, log: Logger): Promise<void> {
    if (this.conn.kind === "cluster") return;
    for await (const keys of this.conn.scan(this.names.legacyRowPattern, scanCount)) {
      if (keys.length === 0) continue;
      const values = await withDeadline(
        Promise.all(keys.map((key) => this.conn.send(key, ["HGET", key, "r"]))),
        this.timeoutMs,
        "HGET",
      );
      for (const value of values) {
        const record = typeof value === "string" ? parseRecord(value) : undefined;
        if (record) store.applyRemote(record, "sync");
      }
      this.keys.push(...keys);
      await yieldToEventLoop();
    }
    if (this.pending) log.info("cluster: moving rows to the bucketed key layout", { rows: this.keys.length });
  }

  async remove(): Promise<void> {
    while (this.keys.length > 0) {
      const keys = this.keys.slice(0, 500);
      await withDeadline(Promise.all(keys.map((key) => this.conn.send(key, ["DEL", key]))), this.timeoutMs, "DEL");
      this.keys.splice(0, keys.length);
    }
  }
}
