import { z } from "zod";
import type { ClusterAtomics, Table } from "#cluster";
import type { Logger } from "#app/lib/context.server.ts";
import type { ClusterPort } from "#app/lib/context.server.ts";
import { LinkError, linkRefSchema, type LinkRef } from "./strategy.server";

const useSchema = z.object({ email: z.string().max(254), usedAt: z.number().int(), usedOn: z.string().max(128) });
const newestSchema = z.object({ issuedAt: z.number().int() });

const consumeRequestSchema = linkRefSchema.extend({ email: z.string().min(3).max(254), usedOn: z.string().max(128) });
const consumeAnswerSchema = z.object({ outcome: z.enum(["ok", "used", "superseded", "burnt"]) });
type Outcome = z.infer<typeof consumeAnswerSchema>["outcome"];

export const CONSUME_METHOD = "link.consume";
export const RELEASE_METHOD = "link.release";
/** the `usedOn` of a link blocked after too many wrong codes: it was never used */
const BURNT = "burnt";
const ASK_ISSUER_TIMEOUT_MS = 3000;
/** a use can be taken back this long after it was decided (its sign-in could not be stored) */
const RELEASE_WINDOW_MS = 60_000;

/** Undo a use whose sign-in could not be stored: the person can use the link (or code) again. */
export type Release = () => Promise<void>;

/** What a use changed, to put it back. */
interface Spent {
  email: string;
  usedOn: string;
  usedAt: number;
  issuedAt: number;
  previousNewest: z.infer<typeof newestSchema> | undefined;
}

/**
 * One use per link, cluster-wide. Gossip mode: the node that issued a link is the only one that
 * decides its use (a check and a write with no await between them), so two nodes opening the
 * same link at once cannot both win; other nodes ask the issuer over the cluster. Redis mode:
 * Redis decides (a claim only the first caller gets), so a link works whichever node is down.
 */
export class LinkUses {
  private readonly uses: Table<z.infer<typeof useSchema>>;
  private readonly newest: Table<z.infer<typeof newestSchema>>;
  /** uses decided here lately, by link key, so the node that used one can take it back */
  private readonly spent = new Map<string, Spent>();

  constructor(
    private readonly cluster: ClusterPort,
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly log: Logger,
  ) {
    this.uses = cluster.store.table("linkUses", { schema: useSchema });
    this.newest = cluster.store.table("linkNewest", { schema: newestSchema });
    cluster.handle(CONSUME_METHOD, async (body, from) => {
      const parsed = consumeRequestSchema.safeParse(body);
      if (!parsed.success) throw new Error("malformed link.consume request");
      const { email, usedOn, ...ref } = parsed.data;
      if (ref.n !== cluster.nodeId) throw new Error(`link was not issued here (asked by ${from})`);
      const outcome = this.decide(email, ref, usedOn);
      // the asking node signs the person in on this answer: the use must survive this node's crash;
      // when it cannot be stored, it is taken back, and the asker says "try again"
      try {
        await cluster.durable();
      } catch (error) {
        if (outcome === "ok") this.release(`${ref.n}/${ref.i}`, usedOn);
        throw error;
      }
      return { outcome };
    });
    cluster.handle(RELEASE_METHOD, async (body, from) => {
      const parsed = consumeRequestSchema.safeParse(body);
      if (!parsed.success) throw new Error("malformed link.release request");
      // only the node that used it takes a use back
      this.release(`${parsed.data.n}/${parsed.data.i}`, from);
      return {};
    });
  }

  /**
   * Use a link, once cluster-wide; resolves with how to take the use back when the sign-in it is
   * for cannot be stored (a full disk: "try again" must not find the link used).
   */
  async consume(email: string, ref: LinkRef): Promise<Release> {
    const atomics = this.cluster.atomics;
    if (atomics?.scope === "cluster") {
      // Redis decided the use, and Redis holds it: a Redis-mode 503 is Redis being away, and the
      // claim stays (the person asks for a new link)
      await this.consumeShared(atomics, email, ref);
      return async () => {};
    }
    const key = `${ref.n}/${ref.i}`;
    const me = this.cluster.nodeId;
    if (ref.n === me) {
      const outcome = this.decide(email, ref, me);
      if (outcome !== "ok") throw new LinkError(outcome, email);
      return async () => this.release(key, me);
    }
    const outcome = await this.askIssuer(email, ref);
    if (outcome !== "ok") throw new LinkError(outcome, email);
    return () => this.askRelease(email, ref);
  }

  /**
   * Take back a use decided here lately by `usedOn`, if nothing came after it: its sign-in was
   * not stored. Called on the issuing node.
   */
  release(key: string, usedOn: string): void {
    const spent = this.spent.get(key);
    this.spent.delete(key);
    if (!spent || spent.usedOn !== usedOn || spent.usedAt + RELEASE_WINDOW_MS < this.now()) return;
    const use = this.uses.get(key);
    if (!use || use.usedOn !== usedOn || use.usedAt !== spent.usedAt) return;
    this.uses.delete(key);
    // "the newest used link" goes back to what it was, unless a newer link was used since
    if (this.newest.get(spent.email)?.issuedAt === spent.issuedAt) {
      if (spent.previousNewest) this.newest.set(spent.email, spent.previousNewest);
      else this.newest.delete(spent.email);
    }
    this.log.info("a link's use was taken back: its sign-in could not be stored", { usedOn });
  }

  private async consumeShared(atomics: ClusterAtomics, email: string, ref: LinkRef): Promise<void> {
    const seen = this.peek(email, ref);
    if (seen !== "ok") throw new LinkError(seen, email);
    const key = `${ref.n}/${ref.i}`;
    let first: boolean;
    try {
      // kept past the link's life, so an expired link is refused as expired, never reused
      first = await atomics.claimOnce("link", key, this.ttlMs + 60 * 60 * 1000);
    } catch (error) {
      this.log.warn("could not decide a sign-in link's single use in Redis", {
        reason: error instanceof Error ? error.message : String(error),
      });
      throw new LinkError("issuer-unreachable", email);
    }
    if (!first) throw new LinkError("used", email);
    // a newer link of this address may have been used while we waited for Redis
    const newest = this.newest.get(email);
    if (newest && newest.issuedAt >= ref.c) throw new LinkError("superseded", email);
    this.uses.set(key, { email, usedAt: this.now(), usedOn: this.cluster.nodeId });
    this.newest.set(email, { issuedAt: ref.c });
  }

  /** This node's current view of a link, for the confirmation page; the issuer still decides on use. */
  peek(email: string, ref: LinkRef): Outcome {
    const use = this.uses.get(`${ref.n}/${ref.i}`);
    if (use) return use.usedOn === BURNT ? "burnt" : "used";
    const newest = this.newest.get(email);
    return newest && newest.issuedAt >= ref.c ? "superseded" : "ok";
  }

  /**
   * Erasure: the address leaves the use records. A used link's record stays (without the
   * address) until its link expires, so the link cannot be used again meanwhile.
   */
  forget(email: string): void {
    for (const [id, use] of [...this.uses.scan()]) {
      if (use.email === email) this.uses.set(id, { ...use, email: "(erased)" });
    }
    if (this.newest.has(email)) this.newest.delete(email);
  }

  /** Drop records of links that can no longer be opened anyway. */
  prune(): number {
    const horizon = this.now() - this.ttlMs - 60 * 60 * 1000;
    let dropped = 0;
    for (const [id, use] of [...this.uses.scan()]) {
      // Redis mode: any node prunes, as the issuer may be gone for good
      if (use.usedAt < horizon && (this.cluster.atomics?.scope === "cluster" || this.isMine(id))) {
        this.uses.delete(id);
        dropped += 1;
      }
    }
    // every link issued before `horizon` has expired, so "newest used" older than it stops nothing;
    // any node may drop it (the row names no node), and a newer use written meanwhile wins by stamp
    for (const [email, newest] of [...this.newest.scan()]) {
      if (newest.issuedAt < horizon) {
        this.newest.delete(email);
        dropped += 1;
      }
    }
    return dropped;
  }

  private isMine(linkId: string): boolean {
    return linkId.startsWith(`${this.cluster.nodeId}/`);
  }

  /**
   * Kill a link whose code was guessed at too often (on its issuer, like a use): the link stops
   * working, and no other link of the address is superseded by it.
   */
  burn(email: string, ref: LinkRef): void {
    if (ref.n !== this.cluster.nodeId) throw new Error("only the issuing node burns a link");
    const key = `${ref.n}/${ref.i}`;
    if (!this.uses.has(key)) this.uses.set(key, { email, usedAt: this.now(), usedOn: BURNT });
  }

  /**
   * Redis mode: kill a link whose code was guessed at too often, from any node. The claim a use
   * would take is taken, so the link is refused everywhere, whichever node it is opened on.
   */
  async burnShared(atomics: ClusterAtomics, email: string, ref: LinkRef): Promise<void> {
    const key = `${ref.n}/${ref.i}`;
    await atomics.claimOnce("link", key, this.ttlMs + 60 * 60 * 1000);
    if (!this.uses.has(key)) this.uses.set(key, { email, usedAt: this.now(), usedOn: BURNT });
  }

  /** The one use, decided here: only on the issuing node (consume and the code check call it). */
  decide(email: string, ref: LinkRef, usedOn: string): Outcome {
    const key = `${ref.n}/${ref.i}`;
    const use = this.uses.get(key);
    if (use) return use.usedOn === BURNT ? "burnt" : "used";
    const newest = this.newest.get(email);
    if (newest && newest.issuedAt >= ref.c) return "superseded";
    const usedAt = this.now();
    this.uses.set(key, { email, usedAt, usedOn });
    this.newest.set(email, { issuedAt: ref.c });
    this.remember(key, { email, usedOn, usedAt, issuedAt: ref.c, previousNewest: newest });
    return "ok";
  }

  private remember(key: string, spent: Spent): void {
    const horizon = this.now() - RELEASE_WINDOW_MS;
    // a map of the last minute's uses: old ones go as new ones come
    for (const [k, s] of this.spent) {
      if (s.usedAt >= horizon) break;
      this.spent.delete(k);
    }
    this.spent.set(key, spent);
  }

  /** Ask the issuing node to take back our use of its link (best effort: at worst the link stays used). */
  private async askRelease(email: string, ref: LinkRef): Promise<void> {
    try {
      await this.cluster.request(
        ref.n,
        RELEASE_METHOD,
        { ...ref, email, usedOn: this.cluster.nodeId },
        ASK_ISSUER_TIMEOUT_MS,
      );
    } catch (error) {
      this.log.warn("could not give a link's use back to the node that issued it", {
        issuer: ref.n,
        reason: error instanceof Error ? error.message : String(error),
      });
    }
  }

  private async askIssuer(email: string, ref: LinkRef): Promise<Outcome> {
    try {
      const answer = await this.cluster.request(
        ref.n,
        CONSUME_METHOD,
        { ...ref, email, usedOn: this.cluster.nodeId },
        ASK_ISSUER_TIMEOUT_MS,
      );
      return consumeAnswerSchema.parse(answer).outcome;
    } catch (error) {
      this.log.warn("could not reach the node that issued a sign-in link", {
        issuer: ref.n,
        reason: error instanceof Error ? error.message : String(error),
      });
      throw new LinkError("issuer-unreachable", email);
    }
  }
}
