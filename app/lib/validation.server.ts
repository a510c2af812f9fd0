import { domainToASCII } from "node:url";

const MAX_EMAIL_LENGTH = 254;
const LOCAL_PART = /^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$/;
const DOMAIN_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export type EmailProblem = "empty" | "spaces" | "tooLong" | "ascii" | "invalid";
/** `message` is the English text (API answers); `problem` names it for pages in other languages */
export type EmailResult = { ok: true; email: string } | { ok: false; problem: EmailProblem; message: string };

/**
 * Trim, Unicode-normalise (NFKC) and lower-case an address; refuse anything that could smuggle
 * headers or is not an address. The local part must be ASCII as typed: case mapping runs only
 * after that check (U+212A KELVIN SIGN lower-cases to `k` and would reach another account), and
 * we do not half-support SMTPUTF8. International domain names become punycode.
 */
export function normaliseEmail(input: unknown): EmailResult {
  if (typeof input !== "string" || input.trim() === "") {
    return { ok: false, problem: "empty", message: "Enter your email address." };
  }
  const typed = input.trim();
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\s]/.test(typed)) {
    return { ok: false, problem: "spaces", message: "An email address cannot contain spaces or line breaks." };
  }
  if (typed.length > MAX_EMAIL_LENGTH * 4) {
    return {
      ok: false,
      problem: "tooLong",
      message: `That address is too long (at most ${MAX_EMAIL_LENGTH} characters).`,
    };
  }
  const at = typed.lastIndexOf("@");
  // eslint-disable-next-line no-control-regex
  if (at > 0 && /[^\u0000-\u007f]/.test(typed.slice(0, at))) {
    return {
      ok: false,
      problem: "ascii",
      message: "Letters outside A–Z before the @ are not supported here; use the plain (ASCII) form of your address.",
    };
  }
  const rawDomain = typed.slice(at + 1).normalize("NFKC");
  // domainToASCII applies IDNA (UTS #46) mapping and punycode; '' means not a valid domain
  const domain = at > 0 ? domainToASCII(rawDomain).toLowerCase() : "";
  const email = `${typed.slice(0, at).toLowerCase()}@${domain}`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\s]/.test(email)) {
    return { ok: false, problem: "spaces", message: "An email address cannot contain spaces or line breaks." };
  }
  if (email.length > MAX_EMAIL_LENGTH) {
    return {
      ok: false,
      problem: "tooLong",
      message: `That address is too long (at most ${MAX_EMAIL_LENGTH} characters).`,
    };
  }
  const local = email.slice(0, at);
  const labels = domain.split(".");
  const valid =
    at > 0 &&
    domain.length > 0 &&
    LOCAL_PART.test(local) &&
    !local.startsWith(".") &&
    !local.endsWith(".") &&
    !local.includes("..") &&
    labels.length >= 2 &&
    labels.every((label) => DOMAIN_LABEL.test(label)) &&
    /[a-z]/.test(labels[labels.length - 1]!);
  if (!valid)
    return {
      ok: false,
      problem: "invalid",
      message: "That does not look like an email address, e.g. ada@example.com.",
    };
  return { ok: true, email };
}

/** Where a sign-in may send the person afterwards: this site, and the FORWARD_AUTH_HOSTS apps. */
export interface RedirectRules {
  appUrl: URL;
  /** `host`, `host:port` or `*.example.com` (any subdomain), lower-case (server/config.ts checks them) */
  forwardAuthHosts: readonly string[];
}

/**
 * The one check of every redirect target (each sign-in method's `redirectTo`, forward auth's
 * original URL). Kept: a path on this site, or an absolute http(s) URL whose host is in
 * FORWARD_AUTH_HOSTS (https only when APP_URL is https; no user:password). Anything else (other
 * hosts, protocol-relative, backslash tricks, encoded forms of those) falls back.
 */
export function safeRedirect(target: unknown, rules: RedirectRules, fallback = "/account"): string {
  if (typeof target !== "string" || target.length === 0 || target.length > 2048) return fallback;
  // eslint-disable-next-line no-control-regex
  if (target.includes("\\") || /[\u0000-\u001f\u007f]/.test(target)) return fallback;
  const { appUrl } = rules;
  if (/^https?:\/\//i.test(target)) {
    const url = parseUrl(target);
    if (!url) return fallback;
    if (url.origin === appUrl.origin) return safePath(`${url.pathname}${url.search}${url.hash}`, appUrl) ?? fallback;
    const schemeOk = url.protocol === "https:" || (url.protocol === "http:" && appUrl.protocol === "http:");
    if (!schemeOk || url.username || url.password || !forwardAuthHostAllowed(url, rules.forwardAuthHosts)) {
      return fallback;
    }
    return url.href;
  }
  return safePath(target, appUrl) ?? fallback;
}

/** A path on this site (not `//host`, not a form that resolves to one), or undefined. */
function safePath(target: string, appUrl: URL): string | undefined {
  if (!target.startsWith("/") || target.startsWith("//")) return undefined;
  let decoded = target;
  try {
    decoded = decodeURIComponent(target);
  } catch {
    return undefined;
  }
  if (decoded.startsWith("//") || decoded.includes("\\")) return undefined;
  const url = parseUrl(target, appUrl);
  if (!url || url.origin !== appUrl.origin) return undefined;
  const path = `${url.pathname}${url.search}${url.hash}`;
  // dot segments resolve `/.//evil`, `/%2e//evil` and `/a/..//evil` to `//evil`: protocol-relative
  if (!/^\/(?![/\\])/.test(path)) return undefined;
  return path;
}

function parseUrl(target: string, base?: URL): URL | undefined {
  try {
    return new URL(target, base);
  } catch {
    return undefined;
  }
}

/** `host` (any port), `host:port`, or `*.example.com` (any subdomain of example.com, not itself). */
export function forwardAuthHostAllowed(url: URL, entries: readonly string[]): boolean {
  const host = url.hostname.toLowerCase();
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return entries.some((entry) => {
    const [, name, entryPort] = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(entry) ?? [];
    if (!name || (entryPort && entryPort !== port)) return false;
    return name.startsWith("*.") ? host.endsWith(name.slice(1)) && host.length > name.length - 1 : host === name;
  });
}

/** The mailbox an address reaches, for counting: `ada+news@` and `ada@` are one budget. */
export function mailboxOf(email: string): string {
  const at = email.lastIndexOf("@");
  const plus = email.indexOf("+");
  if (plus <= 0 || plus > at) return email;
  return `${email.slice(0, plus)}${email.slice(at)}`;
}
