import type { AppContext } from "#app/lib/context.server.ts";
import { optionalUser, requireUser, type AuthContext } from "#app/lib/auth/index.server.ts";
import { apiError } from "#app/lib/http.server.ts";
import { getServices } from "#app/lib/services.server.ts";

/** /cluster is open in local mode on a loopback APP_URL; anywhere else only for ADMIN_EMAILS. */
export async function requireClusterViewer(request: Request, context: AuthContext, as: "page" | "json"): Promise<void> {
  const ctx = context.app;
  if (ctx.config.mode !== "production" && ctx.config.loopback) return;
  const signedIn = as === "page" ? await requireUser(request, context) : await optionalUser(request, context);
  if (!signedIn) throw apiError(401, "unauthorized", "Sign in as an administrator to see the cluster.");
  if (!ctx.config.adminEmails.includes(signedIn.user.email)) {
    if (as === "json") throw apiError(403, "forbidden", "Only ADMIN_EMAILS may see the cluster.");
    throw new Response("Forbidden", { status: 403 });
  }
}

type Row = Record<string, string | number | boolean | null>;

const time = (ms: number | null | undefined) => (typeof ms === "number" ? new Date(ms).toISOString() : null);

/** A table as operators may see it: emails and ids, never tokens, cookies or link ids. */
export function dumpTable(ctx: AppContext, name: string): Row[] | undefined {
  const { users, sessions } = getServices(ctx);
  const store = ctx.cluster.store;
  switch (name) {
    case "users":
      return [
        ...store
          .table<{
            id: string;
            email: string;
            createdAt: number;
            createdOn: string;
            identities: { provider: string }[];
          }>("users")
          .scan(),
      ].map(([, u]) => ({
        id: u.id,
        email: u.email,
        canonical: users.getUser(u.id)?.id === u.id,
        createdAt: time(u.createdAt),
        createdOn: u.createdOn,
        methods: [...new Set(u.identities.map((i) => i.provider))].join(","),
      }));
    case "sessions":
      return [
        ...store
          .table<{
            sid: string;
            uid: string;
            createdAt: number;
            lastUsedAt: number;
            createdOn: string;
            method: string;
          }>("sessions")
          .scan(),
      ].map(([, s]) => ({
        session: `${s.sid.slice(0, 8)}…`,
        uid: s.uid,
        method: s.method,
        createdAt: time(s.createdAt),
        lastUsedAt: time(s.lastUsedAt),
        createdOn: s.createdOn,
        revoked: sessions.isRevoked(s.sid),
      }));
    case "revocations":
      return [...store.table<{ revokedAt: number; reason: string }>("revocations").scan()].map(([sid, r]) => ({
        session: `${sid.slice(0, 8)}…`,
        revokedAt: time(r.revokedAt),
        reason: r.reason,
      }));
    case "emails":
      return [...store.table<{ uid: string }>("emails").scan()].map(([email, c]) => ({ email, uid: c.uid }));
    case "linkUses":
      return [...store.table<{ email: string; usedAt: number; usedOn: string }>("linkUses").scan()].map(([, u]) => ({
        email: u.email,
        usedAt: time(u.usedAt),
        usedOn: u.usedOn,
      }));
    default:
      return undefined;
  }
}

export const DUMPABLE_TABLES = ["users", "sessions", "revocations", "emails", "linkUses"];
