import { createSession, type Session, type SessionStorage } from "@remix-run/node";
import { parse, serialize } from "cookie";
import { sealData, unsealData } from "iron-session";
import type { KeyRing } from "../../server/keys";
import { passwordMap } from "./session-cookie.server";

export const LINK_COOKIE = "pwdless_link";

/**
 * The short-lived cookie remix-auth-email-link keeps the pending link in (its same-browser check).
 * Remix's cookie session only signs; this one seals, so the link inside cannot be read from it.
 */
export function createLinkCookieStorage(keys: KeyRing, options: { secure: boolean; maxAgeSeconds: number }): SessionStorage {
  const openWith = passwordMap(keys, (k) => k.linkCookie);
  const sealWith = { [keys.current.sealId]: keys.current.linkCookie };
  const cookieOptions = (maxAge: number) => ({
    httpOnly: true,
    sameSite: "lax" as const,
    secure: options.secure,
    path: "/",
    maxAge,
  });
  return {
    async getSession(cookieHeader) {
      const raw = parse(cookieHeader ?? "")[LINK_COOKIE];
      let data: Record<string, unknown> = {};
      if (raw && raw.length < 4096) {
        try {
          const opened = await unsealData<Record<string, unknown>>(raw, { password: openWith, ttl: options.maxAgeSeconds });
          if (opened && typeof opened === "object") data = opened;
        } catch {
          data = {};
        }
      }
      return createSession(data, "");
    },
    async commitSession(session: Session) {
      const sealed = await sealData(session.data, { password: sealWith, ttl: options.maxAgeSeconds });
      return serialize(LINK_COOKIE, sealed, cookieOptions(options.maxAgeSeconds));
    },
    async destroySession() {
      return serialize(LINK_COOKIE, "", cookieOptions(0));
    },
  };
}
