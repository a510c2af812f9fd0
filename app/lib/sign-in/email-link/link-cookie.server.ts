import { createSession, type Session, type SessionStorage } from "@remix-run/node";
import { parse, serialize } from "cookie";
import { sealData, unsealData } from "#app/lib/session/seal.server.ts";
import type { KeyRing } from "#app/lib/context.server.ts";
import { passwordMap } from "#app/lib/session/session-cookie.server.ts";

export const LINK_COOKIE = "pwdless_link";

/**
 * The short-lived cookie the email-link strategy keeps the pending link in (its same-browser check).
 * Remix's cookie session only signs; this one seals, so the link inside cannot be read from it.
 */
export function createLinkCookieStorage(
  keys: KeyRing,
  options: { secure: boolean; maxAgeSeconds: number },
): SessionStorage {
  return createSealedCookieStorage(LINK_COOKIE, keys, (k) => k.linkCookie, options);
}

/** A Remix SessionStorage kept whole in one cookie, sealed with iron (AES-256-CBC + HMAC-SHA256). */
export function createSealedCookieStorage(
  name: string,
  keys: KeyRing,
  pick: (k: KeyRing["current"]) => string,
  options: { secure: boolean; maxAgeSeconds: number },
): SessionStorage {
  const openWith = passwordMap(keys, pick);
  const sealWith = { [keys.current.sealId]: pick(keys.current) };
  const cookieOptions = (maxAge: number) => ({
    httpOnly: true,
    sameSite: "lax" as const,
    secure: options.secure,
    path: "/",
    maxAge,
  });
  return {
    async getSession(cookieHeader) {
      const raw = parse(cookieHeader ?? "")[name];
      let data: Record<string, unknown> = {};
      if (raw && raw.length < 4096) {
        try {
          const opened = await unsealData<Record<string, unknown>>(raw, {
            password: openWith,
            ttl: options.maxAgeSeconds,
          });
          if (opened && typeof opened === "object") data = opened;
        } catch {
          data = {};
        }
      }
      return createSession(data, "");
    },
    async commitSession(session: Session) {
      const sealed = await sealData(session.data, { password: sealWith, ttl: options.maxAgeSeconds });
      return serialize(name, sealed, cookieOptions(options.maxAgeSeconds));
    },
    async destroySession() {
      return serialize(name, "", cookieOptions(0));
    },
  };
}
