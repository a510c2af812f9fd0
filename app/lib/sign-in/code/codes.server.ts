/** The 6-digit code in the link's email: checked by the node that issued it, guesses counted per address across the cluster. */
import { createHmac, randomInt, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { indexTable, type ClusterAtomics, type Table, type TableIndex } from "#cluster";
import type { ClusterPort, Logger } from "#app/lib/context.server.ts";
import type { LinkUses, Release } from "#app/lib/sign-in/email-link/link-uses.server.ts";
import {
  CODE_PATTERN,
  isLinkError,
  type LinkPayload,
  type LinkRef,
} from "#app/lib/sign-in/email-link/strategy.server.ts";
import { Refusal } from "#app/lib/sign-in/refusal.server.ts";

/** wrong tries that burn one code (and its link) */
export const WRONG_PER_CODE = 5;
/** wrong tries per address per window, whatever code they were for: a new code does not reset it */
export const WRONG_PER_ADDRESS = 10;
export const WRONG_WINDOW_MS = 60 * 60 * 1000;
export const CHECK_METHOD = "code.check";
export const RELEASE_METHOD = "code.release";
/** a code's use can be taken back this long after (its sign-in could not be stored) */
const RELEASE_WINDOW_MS = 60_000;
const ASK_ISSUER_TIMEOUT_MS = 3000;

export type CodeProblem =
  /** not the code: `triesLeft` more wrong ones burn it */
  | "wrong"
  /** past its link's life, or no code pending for the address (the requester's own, bound by its cookie) */
  | "expired"
  /** typed wrong WRONG_PER_CODE times: it and its link were blocked */
  | "burnt"
  /** its link or code was used, or a newer link of the address was */
  | "used"
  /** not six digits */
  | "malformed"
  /** this address has had WRONG_PER_ADDRESS wrong tries in the window */
  | "budget"
  | "issuer-unreachable";

const STATUS: Record<CodeProblem, number> = {
  wrong: 400,
  expired: 400,
  burnt: 400,
  used: 400,
  malformed: 400,
  budget: 429,
  "issuer-unreachable": 503,
};

/** An expected refusal of a code; `reason` (for the audit) says exactly which case it was. */
export class CodeError extends Refusal<CodeProblem> {
  readonly kind = "code-error";
  constructor(
    problem: CodeProblem,
    readonly reason: string,
    readonly retryAfterSeconds?: number,
    /** for "wrong": how many more wrong tries this code takes before it is burnt */
    readonly triesLeft?: number,
  ) {
    super(problem, STATUS[problem], `code refused: ${problem} (${reason})`);
  }
}

export function isCodeError(error: unknown): error is CodeError {
  return typeof error === "object" && error !== null && (error as { kind?: unknown }).kind === "code-error";
}

/** A uniform 6-digit code from the CSPRNG (randomInt rejects biased draws). */
export const newCode = (): string => String(randomInt(0, 1_000_000)).padStart(6, "0");

/** The address's pending code: its link, and a keyed MAC of the code (never the code). Key: address hash. */
const pendingSchema = z.object({
  i: z.string().min(8).max(64),
  c: z.number().int(),
  n: z.string().min(1).max(128),
  mac: z.string().max(64),
});
type Pending = z.infer<typeof pendingSchema>;

/** One node's wrong tries for one address (key `<address hash>|<node>`): each node writes only its own rows. */
const triesSchema = z.object({
  tries: z.array(z.object({ t: z.number().int(), i: z.string().max(64) })).max(WRONG_PER_ADDRESS * 4),
});
type Tries = z.infer<typeof triesSchema>;

const checkRequestSchema = z.object({
  email: z.string().min(3).max(254),
  code: z.string().regex(CODE_PATTERN),
  usedOn: z.string().min(1).max(128),
});
const releaseRequestSchema = z.object({ email: z.string().min(3).max(254) });
const checkAnswerSchema = z.object({
  outcome: z.enum(["ok", "wrong", "burnt", "used", "superseded", "expired", "none", "budget"]),
  retryAfterSeconds: z.number().int().optional(),
  triesLeft: z.number().int().min(0).max(WRONG_PER_CODE).optional(),
});
type Answer = z.infer<typeof checkAnswerSchema>;

/** What each of the issuer's answers means to the person typing. */
const PROBLEM_OF: Record<Exclude<Answer["outcome"], "ok" | "wrong" | "budget">, CodeProblem> = {
  burnt: "burnt",
  used: "used",
  superseded: "used",
  expired: "expired",
  none: "expired",
};

export interface CodeDeps {
  cluster: ClusterPort;
  linkUses: LinkUses;
  /** the keyed hash of an address (the audit's), so rows name no address */
  hashEmail: (email: string) => string;
  log: Logger;
}

export interface CodeOptions {
  /** HMAC key for the codes' MACs */
  macKey: string;
  /** a code lives as long as its link */
  ttlMs: number;
  now: () => number;
}

/**
 * Codes are decided where their link's use is: on the issuing node, a check and its writes with
 * no await between them, so five wrong tries burn a code exactly even when they arrive at
 * several nodes at once. The per-address budget sums every node's rows (see decision 005).
 */
export class EmailCodes {
  private readonly pending: Table<Pending>;
  private readonly tries: Table<Tries>;
  private readonly triesByAddress: TableIndex;
  private readonly nodeId: string;
  /** codes used here lately, by address hash: the pending row, to put back if the sign-in is not stored */
  private readonly spent = new Map<string, { pending: Pending; usedOn: string; at: number }>();

  constructor(
    private readonly deps: CodeDeps,
    private readonly options: CodeOptions,
  ) {
    this.nodeId = deps.cluster.nodeId;
    this.pending = deps.cluster.store.table("codePending", { schema: pendingSchema });
    this.tries = deps.cluster.store.table("codeTries", { schema: triesSchema });
    this.triesByAddress = indexTable(this.tries, (key) => key.slice(0, key.indexOf("|")));
    deps.cluster.handle(CHECK_METHOD, async (body, from) => {
      const parsed = checkRequestSchema.safeParse(body);
      if (!parsed.success) throw new Error(`malformed ${CHECK_METHOD} request from ${from}`);
      const { email, code, usedOn } = parsed.data;
      const answer = this.decide(email, code, usedOn);
      // the asking node signs the person in on this answer: the use (or the wrong try) must be
      // stored first; a use that cannot be is taken back, and the asker says "try again"
      try {
        await deps.cluster.durable();
      } catch (error) {
        if (answer.outcome === "ok") this.release(this.deps.hashEmail(email), usedOn);
        throw error;
      }
      return answer;
    });
    deps.cluster.handle(RELEASE_METHOD, async (body, from) => {
      const parsed = releaseRequestSchema.safeParse(body);
      if (!parsed.success) throw new Error(`malformed ${RELEASE_METHOD} request from ${from}`);
      // only the node that used it takes a code's use back
      this.release(this.deps.hashEmail(parsed.data.email), from);
      return {};
    });
  }

  /** Called when a link is mailed: its code becomes the address's pending one (older ones stop working). */
  issued(payload: LinkPayload): void {
    this.pending.set(this.deps.hashEmail(payload.e), {
      i: payload.i,
      c: payload.c,
      n: payload.n,
      mac: this.mac(payload.i, payload.k),
    });
  }

  /**
   * Check a typed code; resolves only when it was right and its link is now used, with how to take
   * that use back when the sign-in cannot be stored (finishSignIn calls it).
   */
  async use(email: string, code: string): Promise<Release> {
    if (!CODE_PATTERN.test(code)) throw new CodeError("malformed", "not-six-digits");
    const hash = this.deps.hashEmail(email);
    const over = this.overBudget(hash);
    if (over) throw new CodeError("budget", "wrong-per-address", over);
    const pending = this.pending.get(hash);
    const atomics = this.deps.cluster.atomics;
    if (atomics?.scope === "cluster") {
      // Redis holds the use: see LinkUses.consume
      await this.useShared(atomics, email, code, hash, pending);
      return async () => {};
    }
    const here = !pending || pending.n === this.nodeId;
    const answer = here ? this.decide(email, code, this.nodeId) : await this.askIssuer(pending.n, email, code);
    if (answer.outcome === "ok") {
      return here ? async () => this.release(hash, this.nodeId) : () => this.askRelease(pending.n, email);
    }
    if (answer.outcome === "budget") throw new CodeError("budget", "wrong-per-address", answer.retryAfterSeconds);
    if (answer.outcome === "wrong") throw new CodeError("wrong", "wrong-code", undefined, answer.triesLeft);
    throw new CodeError(PROBLEM_OF[answer.outcome], `code-${answer.outcome}`);
  }

  /** Drop this node's rows that no longer count, and pending codes past their link's life. */
  prune(): void {
    const now = this.options.now();
    for (const [key, row] of [...this.tries.scan()]) {
      if (key.endsWith(`|${this.nodeId}`) && row.tries.every((t) => t.t <= now - WRONG_WINDOW_MS))
        this.tries.delete(key);
    }
    for (const [key, row] of [...this.pending.scan()]) {
      if (row.n === this.nodeId && row.c + this.options.ttlMs < now) this.pending.delete(key);
    }
  }

  /** The decision, on the issuing node (or here, for an address with no pending code). No await inside. */
  private decide(email: string, code: string, usedOn: string): Answer {
    const hash = this.deps.hashEmail(email);
    const over = this.overBudget(hash);
    if (over) return { outcome: "budget", retryAfterSeconds: over };
    const pending = this.pending.get(hash);
    const live = pending && pending.n === this.nodeId && pending.c + this.options.ttlMs >= this.options.now();
    // the same work whether or not there is a code to compare with: an unknown address answers like a
    // wrong code. Nothing is written for it: no code could be right, so there is nothing to guard.
    const right = this.sameMac(pending?.mac ?? "", this.mac(pending?.i ?? "none", code));
    if (!live) return { outcome: pending ? "expired" : this.burntLast(hash) ? "burnt" : "none" };
    const ref: LinkRef = { i: pending.i, c: pending.c, n: pending.n };
    const seen = this.deps.linkUses.peek(email, ref);
    if (seen !== "ok") {
      this.recordWrong(hash, pending.i);
      return { outcome: seen };
    }
    if (!right) {
      this.recordWrong(hash, pending.i);
      const wrong = this.wrongFor(hash, pending.i);
      if (wrong < WRONG_PER_CODE) return { outcome: "wrong", triesLeft: WRONG_PER_CODE - wrong };
      this.deps.linkUses.burn(email, ref);
      this.pending.delete(hash);
      return { outcome: "burnt" };
    }
    const outcome = this.deps.linkUses.decide(email, ref, usedOn);
    if (outcome !== "ok") return { outcome };
    this.pending.delete(hash);
    this.remember(hash, { pending, usedOn, at: this.options.now() });
    return { outcome: "ok" };
  }

  private remember(hash: string, spent: { pending: Pending; usedOn: string; at: number }): void {
    const horizon = this.options.now() - RELEASE_WINDOW_MS;
    for (const [k, s] of this.spent) {
      if (s.at >= horizon) break;
      this.spent.delete(k);
    }
    this.spent.set(hash, spent);
  }

  /**
   * Take back a code's use decided here lately by `usedOn` (on the issuing node): its link is
   * unused again and the code pending again, unless a newer code came meanwhile.
   */
  private release(hash: string, usedOn: string): void {
    const spent = this.spent.get(hash);
    this.spent.delete(hash);
    if (!spent || spent.usedOn !== usedOn || spent.at + RELEASE_WINDOW_MS < this.options.now()) return;
    this.deps.linkUses.release(`${spent.pending.n}/${spent.pending.i}`, usedOn);
    if (!this.pending.has(hash)) this.pending.set(hash, spent.pending);
  }

  /** Ask the issuing node to take back our use of its code (best effort). */
  private async askRelease(issuer: string, email: string): Promise<void> {
    try {
      await this.deps.cluster.request(issuer, RELEASE_METHOD, { email }, ASK_ISSUER_TIMEOUT_MS);
    } catch (error) {
      this.deps.log.warn("could not give a code's use back to the node that issued it", {
        issuer,
        reason: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /**
   * Redis mode: any node decides, and Redis makes each step atomic cluster-wide: the wrong tries
   * of one code are slots Redis hands out (the fifth burns it), and the use is the link's claim.
   */
  private async useShared(
    atomics: ClusterAtomics,
    email: string,
    code: string,
    hash: string,
    pending: Pending | undefined,
  ): Promise<void> {
    const right = this.sameMac(pending?.mac ?? "", this.mac(pending?.i ?? "none", code));
    if (!pending)
      throw this.burntLast(hash) ? new CodeError("burnt", "code-burnt") : new CodeError("expired", "code-none");
    if (pending.c + this.options.ttlMs < this.options.now()) throw new CodeError("expired", "code-expired");
    const ref: LinkRef = { i: pending.i, c: pending.c, n: pending.n };
    const seen = this.deps.linkUses.peek(email, ref);
    if (seen !== "ok") {
      this.recordWrong(hash, pending.i);
      throw new CodeError(PROBLEM_OF[seen], `code-${seen}`);
    }
    try {
      if (!right) {
        this.recordWrong(hash, pending.i);
        const slot = await atomics.reserve("codeWrong", pending.i, WRONG_PER_CODE - 1, this.options.ttlMs);
        if (slot.ok) {
          // Redis decides the burn exactly; the count shown comes from the replicated tries (may lag a moment)
          const left = Math.max(1, WRONG_PER_CODE - this.wrongFor(hash, pending.i));
          throw new CodeError("wrong", "wrong-code", undefined, left);
        }
        await this.deps.linkUses.burnShared(atomics, email, ref);
        this.pending.delete(hash);
        throw new CodeError("burnt", "code-burnt");
      }
      await this.deps.linkUses.consume(email, ref);
    } catch (error) {
      if (isCodeError(error)) throw error;
      if (isLinkError(error)) {
        // the link's own refusal (used, superseded, Redis unreachable) answers for the code too
        if (error.problem === "issuer-unreachable") throw new CodeError("issuer-unreachable", "redis-unreachable");
        throw new CodeError(error.problem === "burnt" ? "burnt" : "used", `code-${error.problem}`);
      }
      if (error instanceof Error && error.name === "ClusterUnavailableError") {
        throw new CodeError("issuer-unreachable", "redis-unreachable");
      }
      throw error;
    }
    this.pending.delete(hash);
  }

  private async askIssuer(issuer: string, email: string, code: string): Promise<Answer> {
    try {
      const answer = await this.deps.cluster.request(
        issuer,
        CHECK_METHOD,
        { email, code, usedOn: this.nodeId },
        ASK_ISSUER_TIMEOUT_MS,
      );
      return checkAnswerSchema.parse(answer);
    } catch (error) {
      this.deps.log.warn("could not reach the node that issued a sign-in code", {
        issuer,
        reason: error instanceof Error ? error.message : String(error),
      });
      throw new CodeError("issuer-unreachable", "issuer-unreachable");
    }
  }

  /** Seconds until a try counts again, when the address has used its budget; 0 when it has not. */
  private overBudget(hash: string): number {
    const horizon = this.options.now() - WRONG_WINDOW_MS;
    const times = this.triesOf(hash)
      .map((t) => t.t)
      .filter((t) => t > horizon);
    if (times.length < WRONG_PER_ADDRESS) return 0;
    return Math.max(1, Math.ceil((Math.min(...times) + WRONG_WINDOW_MS - this.options.now()) / 1000));
  }

  /**
   * Whether the address's last code was burnt: its pending row is gone, but the wrong tries (kept
   * for the hour, replicated) show WRONG_PER_CODE of them for the link tried last. So the right
   * code typed after a burn is told "blocked", not "expired" or "wrong".
   */
  private burntLast(hash: string): boolean {
    const tries = this.triesOf(hash);
    if (tries.length === 0) return false;
    const last = tries.reduce((a, b) => (b.t > a.t ? b : a));
    return this.wrongFor(hash, last.i) >= WRONG_PER_CODE;
  }

  private wrongFor(hash: string, linkId: string): number {
    return this.triesOf(hash).filter((t) => t.i === linkId).length;
  }

  private triesOf(hash: string): Tries["tries"] {
    const all: Tries["tries"] = [];
    for (const key of this.triesByAddress.keys(hash)) all.push(...(this.tries.get(key)?.tries ?? []));
    return all;
  }

  private recordWrong(hash: string, linkId: string): void {
    const key = `${hash}|${this.nodeId}`;
    const now = this.options.now();
    const mine = (this.tries.get(key)?.tries ?? []).filter((t) => t.t > now - WRONG_WINDOW_MS);
    this.tries.set(key, { tries: [...mine, { t: now, i: linkId }].slice(-WRONG_PER_ADDRESS * 2) });
  }

  private mac(linkId: string, code: string): string {
    return createHmac("sha256", this.options.macKey).update(`${linkId}:${code}`).digest("base64url");
  }

  private sameMac(stored: string, computed: string): boolean {
    const a = Buffer.from(computed);
    const b = Buffer.from(stored.length === computed.length ? stored : computed.replace(/./g, "-"));
    // compare equal-length buffers always, so the time does not depend on whether a code exists
    return timingSafeEqual(a, b) && stored.length === computed.length;
  }
}
