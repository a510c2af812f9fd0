import { parse, serialize } from "cookie";
import { sealData, unsealData } from "#app/lib/session/seal.server.ts";
import { z } from "zod";
import type { KeyRing } from "#app/lib/context.server.ts";

export const SESSION_COOKIE = "pwdless_session";

const payloadSchema = z.object({
  uid: z.string().uuid(),
  sid: z.string().uuid(),
  /** when this cookie was sealed (ms): the sliding re-seal decides by it */
  iat: z.number().int(),
  /** the session's refresh generation when this cookie was sealed; cookies sealed before it existed are 0 */
  gen: z.number().int().nonnegative().default(0),
});
export type SessionCookie = z.infer<typeof payloadSchema>;

export interface CookieSettings {
  secure: boolean;
  maxAgeSeconds: number;
  /** COOKIE_DOMAIN: the cookie also reaches this domain's hosts (forward auth); unset, host-only */
  domain?: string;
}

export function passwordMap(keys: KeyRing, pick: (k: KeyRing["current"]) => string): Record<number, string> {
  const map: Record<number, string> = {};
  for (const k of [...keys.previous].reverse()) map[k.sealId] = pick(k);
  map[keys.current.sealId] = pick(keys.current);
  return map;
}

/** at most this many opened cookies are remembered (the oldest forgotten first): a few MB at most */
const MAX_REMEMBERED = 10_000;

/** When an iron seal stops opening (its expiration field, ms), or NaN. */
const sealExpiry = (sealed: string) => Number(sealed.split("~")[0]!.split("*")[5]);

/**
 * Seals `{uid, sid, iat, gen}` with iron-session's sealing (AES-256-CBC + HMAC-SHA256, constant-time
 * MAC check). A cookie that opened is remembered by its exact bytes until its seal expires: every
 * page, API fallback and forward-auth check reads the cookie, and the same bytes open the same way.
 */
export class SessionCookieJar {
  private readonly openWith: Record<number, string>;
  private readonly sealWith: Record<number, string>;
  private readonly opened = new Map<string, { value: SessionCookie; until: number }>();

  constructor(
    keys: KeyRing,
    private readonly settings: CookieSettings,
  ) {
    this.openWith = passwordMap(keys, (k) => k.cookie);
    this.sealWith = { [keys.current.sealId]: keys.current.cookie };
  }

  async read(request: { headers: { get(name: string): string | null } }): Promise<SessionCookie | null> {
    const raw = parse(request.headers.get("Cookie") ?? "")[SESSION_COOKIE];
    if (!raw || raw.length > 4096) return null;
    const known = this.opened.get(raw);
    if (known && known.until > Date.now()) return known.value;
    if (known) this.opened.delete(raw);
    try {
      const data = await unsealData<unknown>(raw, { password: this.openWith, ttl: this.settings.maxAgeSeconds });
      const parsed = payloadSchema.safeParse(data);
      if (!parsed.success) return null;
      const value = Object.freeze(parsed.data);
      const until = sealExpiry(raw);
      if (Number.isFinite(until)) {
        if (this.opened.size >= MAX_REMEMBERED) this.opened.delete(this.opened.keys().next().value!);
        this.opened.set(raw, { value, until });
      }
      return value;
    } catch {
      return null;
    }
  }

  async write(value: z.input<typeof payloadSchema>): Promise<string> {
    const sealed = await sealData(value, { password: this.sealWith, ttl: this.settings.maxAgeSeconds });
    return serialize(SESSION_COOKIE, sealed, this.options(this.settings.maxAgeSeconds));
  }

  clear(): string {
    return serialize(SESSION_COOKIE, "", this.options(0));
  }

  // clearing carries the same Domain as setting: a browser only replaces a cookie of the same domain
  private options(maxAge: number) {
    const { secure, domain } = this.settings;
    return { httpOnly: true, sameSite: "lax" as const, secure, path: "/", maxAge, ...(domain ? { domain } : {}) };
  }
}
