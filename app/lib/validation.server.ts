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

/**
 * A redirect target is kept only when it is a path on this site; anything else
 * (other hosts, protocol-relative, backslash tricks, encoded forms of those) falls back.
 */
export function safeRedirect(target: unknown, appUrl: URL, fallback = "/account"): string {
  if (typeof target !== "string" || target.length === 0 || target.length > 2048) return fallback;
  if (!target.startsWith("/") || target.startsWith("//") || target.includes("\\")) return fallback;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(target)) return fallback;
  let decoded = target;
  try {
    decoded = decodeURIComponent(target);
  } catch {
    return fallback;
  }
  if (decoded.startsWith("//") || decoded.includes("\\")) return fallback;
  let url: URL;
  try {
    url = new URL(target, appUrl);
  } catch {
    return fallback;
  }
  if (url.origin !== appUrl.origin) return fallback;
  const path = `${url.pathname}${url.search}${url.hash}`;
  // dot segments resolve `/.//evil`, `/%2e//evil` and `/a/..//evil` to `//evil`: protocol-relative
  if (!/^\/(?![/\\])/.test(path)) return fallback;
  return path;
}

/** The mailbox an address reaches, for counting: `ada+news@` and `ada@` are one budget. */
export function mailboxOf(email: string): string {
  const at = email.lastIndexOf("@");
  const plus = email.indexOf("+");
  if (plus <= 0 || plus > at) return email;
  return `${email.slice(0, plus)}${email.slice(at)}`;
}
