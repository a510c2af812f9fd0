/** The email-link sign-in method as our own remix-auth Strategy: sealed links built from APP_URL, carrying their code, used once. */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { SessionStorage } from "@remix-run/node";
import { sealData, unsealData } from "#app/lib/session/seal.server.ts";
import { Authenticator, Strategy, type AuthenticateOptions, type StrategyVerifyCallback } from "remix-auth";
import { z } from "zod";
import type { KeyRing } from "#app/lib/context.server.ts";
import { passwordMap } from "#app/lib/session/session-cookie.server.ts";
import { Refusal } from "#app/lib/sign-in/refusal.server.ts";

export type LinkProblem =
  "invalid" | "expired" | "used" | "burnt" | "superseded" | "other-browser" | "issuer-unreachable";

export const LINK_PROBLEM_STATUS: Record<LinkProblem, number> = {
  invalid: 400,
  expired: 410,
  used: 410,
  burnt: 410,
  superseded: 410,
  "other-browser": 403,
  "issuer-unreachable": 503,
};

/** An expected failure of a sign-in link, turned into a page by the route. */
export class LinkError extends Refusal<LinkProblem> {
  readonly kind = "link-error";
  constructor(
    problem: LinkProblem,
    readonly email?: string,
  ) {
    super(problem, LINK_PROBLEM_STATUS[problem], `sign-in link refused: ${problem}`);
  }
}

export function isLinkError(error: unknown): error is LinkError {
  return typeof error === "object" && error !== null && (error as { kind?: unknown }).kind === "link-error";
}

export const CODE_PATTERN = /^[0-9]{6}$/;

/** What a sealed link carries: address, the page to go to, issued-at, link id, issuing node and the mail's code. */
const payloadSchema = z.object({
  e: z.string().min(3).max(254),
  f: z.object({ redirectTo: z.string().max(2048).optional() }).optional(),
  c: z.number().int().positive(),
  i: z.string().min(8).max(64),
  n: z.string().min(1).max(128),
  k: z.string().regex(CODE_PATTERN),
});
export type LinkPayload = z.infer<typeof payloadSchema>;

export const linkRefSchema = z.object({
  i: z.string().min(8).max(64),
  c: z.number().int(),
  n: z.string().min(1).max(128),
});
export type LinkRef = z.infer<typeof linkRefSchema>;

export const CALLBACK_PATH = "/auth/email/callback";
/** where the link cookie keeps the pending link's token and its address (the names remix-auth-email-link used) */
export const LINK_TOKEN_KEY = "auth:magiclink";
export const LINK_EMAIL_KEY = "auth:email";
const MAX_TOKEN_LENGTH = 4096;

export interface SignIn {
  email: string;
  redirectTo: string;
  /** takes the link's use back when the sign-in cannot be stored (finishSignIn calls it) */
  release?: () => Promise<void>;
}

/** What the verify callback gets once a link has passed every check but its one use. */
export interface LinkVerifyParams {
  email: string;
  redirectTo: string;
  link: LinkRef;
}

export interface LinkMail {
  email: string;
  link: string;
  code: string;
  payload: LinkPayload;
  /** the language of the request that asked: the email is written in it */
  locale: string;
}

export interface LinkStrategyOptions {
  appUrl: URL;
  keys: KeyRing;
  nodeId: string;
  ttlMs: number;
  sameBrowser: boolean;
  now: () => number;
  /** a fresh 6-digit code, uniform over 000000–999999 from a CSPRNG */
  newCode: () => string;
  /** this node's view of whether the link was used already: checked before the same-browser rule */
  usedAlready: (payload: LinkPayload) => LinkProblem | null;
  sendEmail: (mail: LinkMail) => Promise<void>;
}

function sameString(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * Links are built from APP_URL only (never the request's Host), sealed with iron (AES-256-CBC +
 * HMAC-SHA256, checked in constant time), carry a link id, the issuing node and the mail's code,
 * and fail with typed errors. Sending is `sendLink`; `authenticate` is the use of a link.
 */
export class EmailLinkStrategy extends Strategy<SignIn, LinkVerifyParams> {
  name = "email-link";
  private readonly openWith: Record<number, string>;
  private readonly sealWith: Record<number, string>;

  constructor(
    private readonly options: LinkStrategyOptions,
    verify: StrategyVerifyCallback<SignIn, LinkVerifyParams>,
  ) {
    super(verify);
    this.openWith = passwordMap(options.keys, (k) => k.link);
    this.sealWith = { [options.keys.current.sealId]: options.keys.current.link };
  }

  /**
   * Mail a link (and its code) for a validated address, and bind it to this browser: the
   * returned Set-Cookie holds its token in the sealed link cookie.
   */
  async sendLink(
    storage: SessionStorage,
    cookieHeader: string | null,
    request: { email: string; redirectTo: string; locale: string },
  ): Promise<{ setCookie: string; payload: LinkPayload }> {
    const payload: LinkPayload = {
      e: request.email,
      f: { redirectTo: request.redirectTo },
      c: this.options.now(),
      i: randomBytes(12).toString("base64url"),
      n: this.options.nodeId,
      k: this.options.newCode(),
    };
    const token = await sealData(JSON.stringify(payload), { password: this.sealWith, ttl: 0 });
    const url = new URL(CALLBACK_PATH, this.options.appUrl.origin);
    url.searchParams.set("token", token);
    await this.options.sendEmail({
      email: request.email,
      link: url.href,
      code: payload.k,
      payload,
      locale: request.locale,
    });
    const session = await storage.getSession(cookieHeader);
    session.set(LINK_TOKEN_KEY, token);
    session.set(LINK_EMAIL_KEY, request.email);
    return { setCookie: await storage.commitSession(session), payload };
  }

  /** The use of a link (the confirmation POST): every check, then `verify`, which decides its one use. */
  async authenticate(request: Request, storage: SessionStorage, options: AuthenticateOptions): Promise<SignIn> {
    const token = new URL(request.url).searchParams.get("token") ?? "";
    const session = await storage.getSession(request.headers.get("Cookie"));
    const cookieToken = session.get(LINK_TOKEN_KEY);
    const { payload, sameBrowser } = await this.inspect(token, typeof cookieToken === "string" ? cookieToken : "");
    const used = this.options.usedAlready(payload);
    if (used) throw new LinkError(used, payload.e);
    if (!sameBrowser) throw new LinkError("other-browser", payload.e);
    const signIn = await this.verify({
      email: payload.e,
      redirectTo: payload.f?.redirectTo ?? "/account",
      link: { i: payload.i, c: payload.c, n: payload.n },
    });
    return this.success(signIn, request, storage, options);
  }

  /** Read a link without using it: for the confirmation page. */
  async inspect(token: string, cookieToken: string): Promise<{ payload: LinkPayload; sameBrowser: boolean }> {
    const payload = await this.openPayload(token);
    if (payload.c + this.options.ttlMs < this.options.now()) throw new LinkError("expired", payload.e);
    return { payload, sameBrowser: !this.options.sameBrowser || sameString(token, cookieToken) };
  }

  private async openPayload(token: string): Promise<LinkPayload> {
    if (!token || token.length > MAX_TOKEN_LENGTH) throw new LinkError("invalid");
    try {
      const opened = await unsealData<unknown>(token, { password: this.openWith, ttl: 0 });
      const parsed = typeof opened === "string" ? payloadSchema.safeParse(JSON.parse(opened)) : undefined;
      if (parsed?.success) return parsed.data;
    } catch {
      // fall through: not sealed by us, or not JSON
    }
    throw new LinkError("invalid");
  }
}

export function createEmailLinkAuthenticator(storage: SessionStorage, link: EmailLinkStrategy): Authenticator<SignIn> {
  const authenticator = new Authenticator<SignIn>(storage, { throwOnError: true });
  authenticator.use(link, link.name);
  return authenticator;
}
