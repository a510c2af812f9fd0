/**
 * Who may create an account (SIGNUP, SIGNUP_ALLOWED_DOMAINS, SIGNUP_BLOCKED_DOMAINS, invites).
 * Existing users always sign in; this is asked only for an address with no account.
 */
import { z } from "zod";
import type { Table } from "#cluster";
import type { ClusterPort, SignupSettings } from "#app/lib/context.server.ts";

const inviteSchema = z.object({
  at: z.number().int(),
  by: z.string().max(64),
  until: z.number().int(),
});
export type Invite = z.infer<typeof inviteSchema>;

const INVITE_TTL_MS = 30 * 24 * 60 * 60 * 1000;
const OPEN: SignupSettings = { mode: "open", allowedDomains: [], blockedDomains: [] };

/** `example.com` is that domain; `*.example.com` any of its subdomains (not itself). */
export function domainMatches(domain: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.startsWith("*.") ? domain.endsWith(p.slice(1)) : domain === p));
}

export class SignupPolicy {
  private readonly invites: Table<Invite>;
  readonly settings: SignupSettings;

  constructor(
    cluster: ClusterPort,
    settings: SignupSettings | undefined,
    private readonly now: () => number,
  ) {
    this.settings = settings ?? OPEN;
    this.invites = cluster.store.table("invites", { schema: inviteSchema });
  }

  /**
   * May this address (with no account) create one? Blocked domains never; an invitation yes
   * (unless SIGNUP=closed); otherwise open mode takes any address of an allowed domain (all, when
   * none is listed) and invite mode only the allowed domains.
   */
  mayCreate(email: string): boolean {
    const { mode, allowedDomains, blockedDomains } = this.settings;
    const domain = email.slice(email.lastIndexOf("@") + 1);
    if (domainMatches(domain, blockedDomains)) return false;
    if (mode === "closed") return false;
    if (this.invited(email)) return true;
    if (mode === "invite") return allowedDomains.length > 0 && domainMatches(domain, allowedDomains);
    return allowedDomains.length === 0 || domainMatches(domain, allowedDomains);
  }

  invited(email: string): boolean {
    const invite = this.invites.get(email);
    return !!invite && invite.until > this.now();
  }

  invite(email: string, by: string): Invite {
    const invite = { at: this.now(), by, until: this.now() + INVITE_TTL_MS };
    this.invites.set(email, invite);
    return invite;
  }

  /** An invitation is used up by the account it let in (and forgotten on erasure). */
  forget(email: string): void {
    if (this.invites.has(email)) this.invites.delete(email);
  }

  prune(): void {
    const now = this.now();
    for (const [email, invite] of [...this.invites.scan()]) if (invite.until <= now) this.invites.delete(email);
  }
}

/**
 * A refused address must not answer faster than a mailed one: the time a send takes (the mean of
 * recent sends on this node, with its spread) is waited instead, so both take the same path's time.
 */
export class SendTiming {
  private mean = 0;
  private deviation = 0;
  private samples = 0;

  note(ms: number): void {
    this.samples += 1;
    const weight = this.samples < 20 ? 1 / this.samples : 0.05;
    const diff = ms - this.mean;
    this.mean += weight * diff;
    this.deviation += weight * (Math.abs(diff) - this.deviation);
  }

  /** A wait like one send: the mean give or take the spread; 20 ms before any send was timed. */
  async imitate(random: () => number = Math.random): Promise<void> {
    const ms = this.samples === 0 ? 20 : Math.max(0, this.mean + (random() * 2 - 1) * this.deviation);
    await new Promise((resolve) => setTimeout(resolve, ms));
  }
}
