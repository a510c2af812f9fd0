import { randomBytes, timingSafeEqual } from "node:crypto";
import type { SessionStorage } from "@remix-run/node";
import { sealData, unsealData } from "iron-session";
import { Authenticator, type Strategy, type StrategyVerifyCallback } from "remix-auth";
import {
  EmailLinkStrategy,
  type EmailLinkStrategyOptions,
  type EmailLinkStrategyVerifyParams,
  type MagicLinkPayload,
} from "remix-auth-email-link";
import { z } from "zod";
import type { KeyRing } from "#app/lib/context.server.ts";
import { passwordMap } from "#app/lib/session/session-cookie.server.ts";

export type LinkProblem = "invalid" | "expired" | "used" | "superseded" | "other-browser" | "issuer-unreachable";

/** An expected failure of a sign-in link, turned into a page by the route. */
export class LinkError extends Error {
  readonly kind = "link-error";
  constructor(
    readonly problem: LinkProblem,
    readonly email?: string,
  ) {
    super(`sign-in link refused: ${problem}`);
  }
}

export function isLinkError(error: unknown): error is LinkError {
  return typeof error === "object" && error !== null && (error as { kind?: unknown }).kind === "link-error";
}

/** What a sealed link carries: the library's fields plus our link id and issuing node. */
const payloadSchema = z.object({
  e: z.string().min(3).max(254),
  f: z.record(z.unknown()).optional(),
  c: z.number().int().positive(),
  i: z.string().min(8).max(64),
  n: z.string().min(1).max(128),
});
export type LinkPayload = z.infer<typeof payloadSchema>;

export const CALLBACK_PATH = "/auth/email/callback";
const MAX_TOKEN_LENGTH = 4096;

/** The library's private steps we replace; they are plain methods at run time. */
interface Overridable {
  getDomainURL(request: Request): string;
  createMagicLinkPayload(emailAddress: string, form: FormData): MagicLinkPayload;
  encrypt(value: string): Promise<string>;
  decrypt(value: string): Promise<string>;
  validateMagicLink(requestUrl: string, sessionMagicLink: string): Promise<{ emailAddress: string; form: FormData }>;
}

export interface SignIn<User> {
  user: User;
  redirectTo: string;
}

export interface LinkStrategyOptions<User> {
  appUrl: URL;
  keys: KeyRing;
  nodeId: string;
  ttlMs: number;
  sameBrowser: boolean;
  now: () => number;
  /** this node's view of whether the link was used already: checked before the same-browser rule */
  usedAlready: (payload: LinkPayload) => LinkProblem | null;
  sendEmail: EmailLinkStrategyOptions<SignIn<User>>["sendEmail"];
}

function sameString(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * remix-auth-email-link, hardened: links are built from APP_URL only (never the request's
 * Host), sealed with iron (AES-256-CBC + HMAC-SHA256, checked in constant time) instead of
 * crypto-js AES without a MAC, carry a link id and the issuing node, and fail with typed errors.
 */
export class SealedEmailLinkStrategy<User> {
  readonly strategy: Strategy<SignIn<User>, EmailLinkStrategyVerifyParams>;
  private readonly openWith: Record<number, string>;
  private readonly sealWith: Record<number, string>;

  constructor(
    private readonly options: LinkStrategyOptions<User>,
    verify: StrategyVerifyCallback<SignIn<User>, EmailLinkStrategyVerifyParams>,
  ) {
    this.openWith = passwordMap(options.keys, (k) => k.link);
    this.sealWith = { [options.keys.current.sealId]: options.keys.current.link };
    const strategy = new EmailLinkStrategy<SignIn<User>>(
      {
        // the library insists on a secret; its crypto-js cipher is replaced below and never runs
        secret: options.keys.current.link,
        callbackURL: CALLBACK_PATH,
        sendEmail: options.sendEmail,
        linkExpirationTime: options.ttlMs,
        validateSessionMagicLink: options.sameBrowser,
        // addresses are validated and normalised before they reach the strategy
        verifyEmailAddress: async () => undefined,
      },
      verify,
    );
    const replaced: Overridable = {
      getDomainURL: () => options.appUrl.origin,
      createMagicLinkPayload: (emailAddress, form) => this.createPayload(emailAddress, form),
      encrypt: (value) => this.seal(value),
      decrypt: (value) => this.open(value),
      validateMagicLink: (requestUrl, sessionLink) => this.validate(requestUrl, sessionLink),
    };
    Object.assign(strategy, replaced);
    this.strategy = strategy;
  }

  /** Read a link without using it: for the confirmation page. */
  async inspect(
    token: string,
    linkCookieLink: string | undefined,
  ): Promise<{ payload: LinkPayload; sameBrowser: boolean }> {
    const payload = await this.openPayload(token);
    if (payload.c + this.options.ttlMs < this.options.now()) throw new LinkError("expired", payload.e);
    const sessionCode = linkCookieLink ? this.codeOf(await this.open(linkCookieLink)) : "";
    return { payload, sameBrowser: !this.options.sameBrowser || sameString(token, sessionCode) };
  }

  private createPayload(emailAddress: string, form: FormData): LinkPayload {
    const f: Record<string, string> = {};
    for (const [key, value] of form) if (key !== "email" && typeof value === "string") f[key] = value;
    return {
      e: emailAddress,
      ...(Object.keys(f).length > 0 ? { f } : {}),
      c: this.options.now(),
      i: randomBytes(12).toString("base64url"),
      n: this.options.nodeId,
    };
  }

  private async seal(value: string): Promise<string> {
    return sealData(value, { password: this.sealWith, ttl: 0 });
  }

  /** The library hands us '' or a cookie's value as well as tokens: never throw, '' means "none". */
  private async open(value: string): Promise<string> {
    if (!value || value.length > MAX_TOKEN_LENGTH) return "";
    try {
      const opened = await unsealData<unknown>(value, { password: this.openWith, ttl: 0 });
      return typeof opened === "string" ? opened : "";
    } catch {
      return "";
    }
  }

  private async openPayload(token: string): Promise<LinkPayload> {
    const opened = await this.open(token);
    if (!opened) throw new LinkError("invalid");
    try {
      const parsed = payloadSchema.safeParse(JSON.parse(opened));
      if (parsed.success) return parsed.data;
    } catch {
      // fall through: not JSON
    }
    throw new LinkError("invalid");
  }

  private codeOf(link: string): string {
    try {
      return new URL(link).searchParams.get("token") ?? "";
    } catch {
      return "";
    }
  }

  private async validate(requestUrl: string, sessionMagicLink: string) {
    const token = this.codeOf(requestUrl);
    const { payload } = await this.inspect(token, undefined);
    const used = this.options.usedAlready(payload);
    if (used) throw new LinkError(used, payload.e);
    if (this.options.sameBrowser && !sameString(token, this.codeOf(sessionMagicLink))) {
      throw new LinkError("other-browser", payload.e);
    }
    const form = new FormData();
    form.set("email", payload.e);
    for (const [key, value] of Object.entries(payload.f ?? {})) if (typeof value === "string") form.set(key, value);
    form.set("_link", JSON.stringify({ i: payload.i, c: payload.c, n: payload.n }));
    return { emailAddress: payload.e, form };
  }
}

export function createEmailLinkAuthenticator<User>(
  storage: SessionStorage,
  link: SealedEmailLinkStrategy<User>,
): Authenticator<SignIn<User>> {
  const authenticator = new Authenticator<SignIn<User>>(storage, { throwOnError: true });
  authenticator.use(link.strategy, "email-link");
  return authenticator;
}

export const linkRefSchema = z.object({
  i: z.string().min(8).max(64),
  c: z.number().int(),
  n: z.string().min(1).max(128),
});
export type LinkRef = z.infer<typeof linkRefSchema>;
