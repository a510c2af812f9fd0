import { z } from "zod";
import { indexTable, type Table, type TableIndex } from "#cluster";
import type { ClusterPort } from "#app/lib/context.server.ts";

export type Verdict = { ok: true } | { ok: false; retryAfterSeconds: number };

/** Counts per key within a sliding window, in this node's memory (per-IP limits). */
export class SlidingWindowLimiter {
  private readonly hits = new Map<string, number[]>();
  private static readonly MAX_KEYS = 100_000;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number,
  ) {}

  /** Count one more attempt for `key`, or refuse it when the window is full. */
  hit(key: string): Verdict {
    const now = this.now();
    const recent = (this.hits.get(key) ?? []).filter((t) => t > now - this.windowMs);
    if (recent.length >= this.limit) {
      this.hits.set(key, recent);
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((recent[0]! + this.windowMs - now) / 1000)) };
    }
    recent.push(now);
    this.hits.set(key, recent);
    if (this.hits.size > SlidingWindowLimiter.MAX_KEYS) this.prune();
    return { ok: true };
  }

  prune(): void {
    const horizon = this.now() - this.windowMs;
    for (const [key, times] of this.hits) if (times.every((t) => t <= horizon)) this.hits.delete(key);
  }
}

const sendsSchema = z.object({
  /** when each link was sent (ms) and a keyed hash of the client that asked for it */
  sends: z.array(z.object({ t: z.number().int(), c: z.string().min(1).max(64) })).max(10_000),
});
type Sends = z.infer<typeof sendsSchema>;

/** A reserved send: handed back with `release` when the mail could not be sent. */
export interface SendTicket {
  readonly mailbox: string;
  readonly t: number;
  readonly c: string;
}

export type Reservation = { ok: true; ticket: SendTicket } | { ok: false; retryAfterSeconds: number };

/** A counted send in either mode: `release()` gives the slot back when the mail could not be sent. */
export type Slot = { ok: true; release(): Promise<void> } | { ok: false; retryAfterSeconds: number };

export interface EmailSendLimits {
  /** link emails per mailbox and client in the window */
  perClient: number;
  /** link emails per mailbox from every client together: bounds mail bombing from many addresses */
  total: number;
  windowMs: number;
}

/**
 * Link emails per mailbox, counted cluster-wide: each node writes only its own row per mailbox
 * (`<mailbox hash>|<node>`), so concurrent sends on two nodes never overwrite each other.
 * A stranger's requests use up only their own client's budget, not the owner's: only the much
 * larger total, which needs many client networks, can delay the owner.
 */
export class EmailSendLimiter {
  private readonly table: Table<Sends>;
  /** mailbox hash → its rows' keys, so a check reads only those */
  private readonly byMailbox: TableIndex;

  constructor(
    private readonly cluster: ClusterPort,
    private readonly limits: EmailSendLimits,
    private readonly now: () => number,
  ) {
    this.table = cluster.store.table("linkSends", { schema: sendsSchema });
    this.byMailbox = indexTable(this.table, (key) => key.slice(0, key.indexOf("|")));
  }

  /**
   * Check and count one send in the same synchronous step, before the mail is handed over, so
   * concurrent requests on this node can never pass the check together.
   */
  reserve(mailbox: string, client: string): Reservation {
    const now = this.now();
    const recent = this.recent(mailbox);
    const mine = recent.filter((s) => s.c === client);
    const full = mine.length >= this.limits.perClient ? mine : recent.length >= this.limits.total ? recent : null;
    if (full) {
      const oldest = Math.min(...full.map((s) => s.t));
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((oldest + this.limits.windowMs - now) / 1000)) };
    }
    const key = this.ownKey(mailbox);
    const kept = (this.table.get(key)?.sends ?? []).filter((s) => s.t > now - this.limits.windowMs);
    const ticket: SendTicket = { mailbox, t: now, c: client };
    this.table.set(key, { sends: [...kept, { t: now, c: client }].slice(-this.limits.total - 1) });
    return { ok: true, ticket };
  }

  /**
   * Count a send before it goes out, or refuse it, in whichever mode the cluster runs. Redis mode:
   * both budgets are taken atomically in Redis, cluster-wide (rejects with ClusterUnavailableError
   * when Redis is away). Gossip mode: `reserve`, atomic on this node.
   */
  async take(mailbox: string, client: string): Promise<Slot> {
    const atomics = this.cluster.atomics;
    if (atomics?.scope !== "cluster") {
      const reserved = this.reserve(mailbox, client);
      if (!reserved.ok) return reserved;
      return { ok: true, release: async () => this.release(reserved.ticket) };
    }
    const { perClient, total, windowMs } = this.limits;
    const refused = (retryAfterMs: number): Slot => ({
      ok: false,
      retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
    });
    const mine = await atomics.reserve("linkSendsByClient", `${mailbox}|${client}`, perClient, windowMs);
    if (!mine.ok) return refused(mine.retryAfterMs);
    const all = await atomics.reserve("linkSends", mailbox, total, windowMs).catch(async (error: unknown) => {
      await atomics.release("linkSendsByClient", `${mailbox}|${client}`, mine.id).catch(() => undefined);
      throw error;
    });
    if (!all.ok) {
      await atomics.release("linkSendsByClient", `${mailbox}|${client}`, mine.id);
      return refused(all.retryAfterMs);
    }
    return {
      ok: true,
      release: async () => {
        await atomics.release("linkSendsByClient", `${mailbox}|${client}`, mine.id);
        await atomics.release("linkSends", mailbox, all.id);
      },
    };
  }

  /** Give a reserved send back (the mail was not sent). */
  release(ticket: SendTicket): void {
    const key = this.ownKey(ticket.mailbox);
    const sends = this.table.get(key)?.sends ?? [];
    const at = sends.findIndex((s) => s.t === ticket.t && s.c === ticket.c);
    if (at === -1) return;
    const rest = sends.filter((_, i) => i !== at);
    if (rest.length === 0) this.table.delete(key);
    else this.table.set(key, { sends: rest });
  }

  /** Delete this node's rows that no longer count. */
  prune(): void {
    const horizon = this.now() - this.limits.windowMs;
    for (const [key, row] of [...this.table.scan()]) {
      if (key.endsWith(`|${this.cluster.nodeId}`) && row.sends.every((s) => s.t <= horizon)) this.table.delete(key);
    }
  }

  private ownKey(mailbox: string): string {
    return `${mailbox}|${this.cluster.nodeId}`;
  }

  private recent(mailbox: string): Sends["sends"] {
    const horizon = this.now() - this.limits.windowMs;
    const sends: Sends["sends"] = [];
    for (const key of this.byMailbox.keys(mailbox)) {
      sends.push(...(this.table.get(key)?.sends ?? []).filter((s) => s.t > horizon));
    }
    return sends;
  }
}
