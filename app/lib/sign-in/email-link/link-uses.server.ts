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
/** the `usedOn` of a link blocked after too many wrong codes: it was never used */
const BURNT = "burnt";
const ASK_ISSUER_TIMEOUT_MS = 3000;

/**
 * One use per link, cluster-wide. Gossip mode: the node that issued a link is the only one that
 * decides its use (a check and a write with no await between them), so two nodes opening the
 * same link at once cannot both win; other nodes ask the issuer over the cluster. Redis mode:
 * Redis decides (a claim only the first caller gets), so a link works whichever node is down.
 */
export class LinkUses {
  private readonly uses: Table<z.infer<typeof useSchema>>;
  private readonly newest: Table<z.infer<typeof newestSchema>>;

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
      // the asking node signs the person in on this answer: the use must survive this node's crash
      await cluster.durable();
      return { outcome };
    });
  }

  async consume(email: string, ref: LinkRef): Promise<void> {
    const atomics = this.cluster.atomics;
    if (atomics?.scope === "cluster") return this.consumeShared(atomics, email, ref);
    const outcome =
      ref.n === this.cluster.nodeId ? this.decide(email, ref, this.cluster.nodeId) : await this.askIssuer(email, ref);
    if (outcome !== "ok") throw new LinkError(outcome, email);
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
    this.uses.set(key, { email, usedAt: this.now(), usedOn });
    this.newest.set(email, { issuedAt: ref.c });
    return "ok";
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
