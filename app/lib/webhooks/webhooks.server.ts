/**
 * Signed webhooks (Standard Webhooks): user.created, user.updated, user.disabled, user.deleted,
 * session.created and session.ended, POSTed to every WEBHOOK_URLS entry, at least once.
 *
 * An event is a row of the replicated `webhookEvents` table written by a change listener, in the
 * same event-loop turn as the change it reports, so the tables file commits both in one
 * transaction: a node killed right after acknowledging a sign-in finds the event in its file and
 * delivers it after restarting. Only the node that made the change delivers (one delivery per
 * event cluster-wide); a delivered event's row is deleted. Retries back off exponentially for
 * 24 h. Delivery runs beside requests, never in them; the queue is bounded and drops the oldest.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { Change, Table } from "#cluster";
import type { ClusterPort, Logger, WebhookSettings } from "#app/lib/context.server.ts";
import { sign } from "./sign.server";

export const EVENT_TYPES = [
  "user.created",
  "user.updated",
  "user.disabled",
  "user.deleted",
  "session.created",
  "session.ended",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

const eventSchema = z.object({
  type: z.enum(EVENT_TYPES),
  /** the whole body, as sent: the signature covers these bytes on every attempt */
  body: z.string().max(8192),
  at: z.number().int(),
  /** the node that made the change: it delivers */
  on: z.string().max(128),
  /** the user the event is about: an erasure deletes its undelivered events */
  uid: z.string().max(64),
});
type EventRow = z.infer<typeof eventSchema>;

export interface WebhookStats {
  queued: number;
  delivered: number;
  attempts: number;
  failedAttempts: number;
  /** dropped because the queue was full */
  dropped: number;
  /** given up after retrying for 24 h */
  expired: number;
}

/** The rows webhooks report on, as their owners keep them. */
export interface WatchedTables {
  users: Table<{ id: string; email: string; createdAt: number; identities: readonly unknown[] }>;
  disabled: Table<{ at: number }>;
  sessions: Table<{ sid: string; uid: string; method: string; createdAt: number }>;
  revocations: Table<{ revokedAt: number; reason: string }>;
}

export interface WebhookOptions {
  settings: WebhookSettings | undefined;
  now?: () => number;
  /** the first retry's wait; each next one doubles, up to `maxBackoffMs` */
  firstBackoffMs?: number;
  maxBackoffMs?: number;
  timeoutMs?: number;
  concurrency?: number;
}

interface Delivery {
  /** URLs still to answer 2xx */
  urls: Set<string>;
  attempt: number;
  dueAt: number;
  inFlight: boolean;
}

export class Webhooks {
  private readonly events: Table<EventRow>;
  /** this node's undelivered events, oldest first (Map keeps insertion order) */
  private readonly queue = new Map<string, Delivery>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private stopped = false;
  private lastDropLog = 0;
  private droppedSinceLog = 0;
  /** delivered events whose rows are deleted together, shortly (see `delivered`) */
  private readonly toDelete = new Set<string>();
  private deleteTimer: NodeJS.Timeout | undefined;
  readonly stats: WebhookStats = { queued: 0, delivered: 0, attempts: 0, failedAttempts: 0, dropped: 0, expired: 0 };

  constructor(
    private readonly cluster: ClusterPort,
    tables: WatchedTables,
    private readonly log: Logger,
    private readonly options: WebhookOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.events = cluster.store.table("webhookEvents", { schema: eventSchema });
    if (!options.settings) return;
    this.watch(tables);
    // events this node wrote before a restart (read back from its file) are still owed
    for (const [id, row] of this.events.scan()) if (row.on === cluster.nodeId) this.enqueue(id);
    this.schedule(0);
  }

  get enabled(): boolean {
    return this.options.settings !== undefined;
  }

  /** Forget this user's undelivered events (erasure), but for the one saying they were deleted. */
  forgetUser(uid: string): void {
    for (const [id, row] of [...this.events.scan()]) {
      if (row.uid === uid && row.type !== "user.deleted") this.remove(id);
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.deleteDelivered();
  }

  // --- what becomes an event ---

  private watch(t: WatchedTables): void {
    const local = <V>(table: Table<V>, on: (change: Change<V>) => void) =>
      table.onChange((change) => {
        if (change.origin === "local") on(change);
      });
    local(t.users, ({ key, value, previous }) => {
      if (!value) this.emit("user.deleted", key, { id: key });
      else if (!previous)
        this.emit("user.created", key, { id: key, email: value.email, createdAt: iso(value.createdAt) });
      else if (previous.email !== value.email || previous.identities.length !== value.identities.length) {
        this.emit("user.updated", key, { id: key, email: value.email });
      }
    });
    local(t.disabled, ({ key, value, previous }) => {
      if (value && !previous) this.emit("user.disabled", key, { id: key, disabledAt: iso(value.at) });
      else if (!value && previous && t.users.has(key)) this.emit("user.updated", key, { id: key, disabled: false });
    });
    local(t.sessions, ({ value, previous }) => {
      if (value && !previous) {
        this.emit("session.created", value.uid, {
          id: value.sid,
          userId: value.uid,
          method: value.method,
          createdAt: iso(value.createdAt),
        });
      }
    });
    local(t.revocations, ({ key, value, previous }) => {
      if (!value || previous) return;
      const uid = t.sessions.get(key)?.uid ?? "";
      this.emit("session.ended", uid, {
        id: key,
        userId: uid || null,
        reason: value.reason,
        endedAt: iso(value.revokedAt),
      });
    });
  }

  /** Write the event row now (same turn, same commit as the change) and queue its delivery. */
  private emit(type: EventType, uid: string, data: Record<string, unknown>): void {
    const at = this.now();
    const id = `msg_${at.toString(36)}${randomBytes(8).toString("hex")}`;
    const body = JSON.stringify({ type, timestamp: iso(at), data });
    this.events.set(id, { type, body, at, on: this.cluster.nodeId, uid });
    this.enqueue(id);
    this.schedule(0);
  }

  private enqueue(id: string): void {
    if (this.queue.has(id)) return;
    this.queue.set(id, { urls: new Set(this.options.settings!.urls), attempt: 0, dueAt: 0, inFlight: false });
    this.stats.queued = this.queue.size;
    const max = this.options.settings!.maxQueue;
    while (this.queue.size > max) {
      const oldest = this.queue.keys().next().value!;
      this.remove(oldest);
      this.stats.dropped += 1;
      this.droppedSinceLog += 1;
    }
    if (this.droppedSinceLog > 0 && this.now() - this.lastDropLog > 10_000) {
      this.log.warn("webhooks: the queue is full; dropped the oldest undelivered events", {
        dropped: this.droppedSinceLog,
        maxQueue: max,
      });
      this.lastDropLog = this.now();
      this.droppedSinceLog = 0;
    }
  }

  private remove(id: string): void {
    this.queue.delete(id);
    this.stats.queued = this.queue.size;
    if (this.events.has(id)) this.events.delete(id);
  }

  /**
   * A delivered event leaves the queue now and its row a little later, with the others delivered
   * meanwhile: one commit for many deliveries instead of one each. A node that dies in between
   * delivers those again after its restart (at least once: receivers de-duplicate by webhook-id).
   */
  private delivered(id: string): void {
    this.queue.delete(id);
    this.stats.queued = this.queue.size;
    this.toDelete.add(id);
    if (this.deleteTimer === undefined) {
      this.deleteTimer = setTimeout(() => this.deleteDelivered(), DELETE_DELIVERED_AFTER_MS);
      this.deleteTimer.unref();
    }
  }

  private deleteDelivered(): void {
    clearTimeout(this.deleteTimer);
    this.deleteTimer = undefined;
    for (const id of this.toDelete) if (this.events.has(id)) this.events.delete(id);
    this.toDelete.clear();
  }

  // --- delivery ---

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer && ms > 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, ms);
    this.timer.unref();
  }

  private pump(): void {
    const now = this.now();
    const settings = this.options.settings!;
    const concurrency = this.options.concurrency ?? 8;
    let next = Infinity;
    for (const [id, delivery] of this.queue) {
      if (delivery.inFlight) continue;
      const row = this.events.get(id);
      if (!row) {
        this.queue.delete(id);
        continue;
      }
      if (now - row.at > settings.retryForMs) {
        this.stats.expired += 1;
        this.log.warn("webhooks: gave up on an event after retrying for 24 h", { id, type: row.type });
        this.remove(id);
        continue;
      }
      if (delivery.dueAt > now) {
        next = Math.min(next, delivery.dueAt);
        continue;
      }
      if (this.inFlight >= concurrency) break;
      void this.attempt(id, row, delivery);
    }
    this.stats.queued = this.queue.size;
    if (next !== Infinity) this.schedule(Math.max(10, next - now));
  }

  private async attempt(id: string, row: EventRow, delivery: Delivery): Promise<void> {
    delivery.inFlight = true;
    this.inFlight += 1;
    const timestamp = Math.floor(this.now() / 1000);
    const headers = {
      "Content-Type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": sign(this.options.settings!.secret, id, timestamp, row.body),
      "User-Agent": "PwdlessGs-Webhooks",
    };
    const results = await Promise.all(
      [...delivery.urls].map(async (url) => {
        this.stats.attempts += 1;
        try {
          const response = await fetch(url, {
            method: "POST",
            headers,
            body: row.body,
            redirect: "manual",
            signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
          });
          await response.body?.cancel().catch(() => undefined);
          return { url, ok: response.status >= 200 && response.status < 300, why: `HTTP ${response.status}` };
        } catch (error) {
          return { url, ok: false, why: (error as Error).message };
        }
      }),
    );
    this.inFlight -= 1;
    delivery.inFlight = false;
    for (const r of results) {
      if (r.ok) delivery.urls.delete(r.url);
      else this.stats.failedAttempts += 1;
    }
    if (delivery.urls.size === 0) {
      this.stats.delivered += 1;
      this.delivered(id);
    } else if (this.queue.has(id)) {
      delivery.attempt += 1;
      const first = this.options.firstBackoffMs ?? 5_000;
      const wait = Math.min(first * 2 ** (delivery.attempt - 1), this.options.maxBackoffMs ?? 3_600_000);
      delivery.dueAt = this.now() + wait * (0.8 + Math.random() * 0.4);
      if (delivery.attempt === 1 || delivery.attempt % 5 === 0) {
        this.log.warn("webhooks: delivery failed; retrying later", {
          id,
          type: row.type,
          attempt: delivery.attempt,
          reasons: results.filter((r) => !r.ok).map((r) => r.why),
          retryInMs: Math.round(wait),
        });
      }
    }
    this.schedule(0);
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
const DELETE_DELIVERED_AFTER_MS = 250;
