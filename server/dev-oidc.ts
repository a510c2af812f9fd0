/**
 * The development OpenID provider: a real OpenID Connect issuer (oidc-provider) served by this
 * process at APP_URL/dev/oidc, so "Sign in with Dev OIDC" works with no settings. Its sign-in
 * page asks for any email address and vouches for it. Local mode only (never in production).
 */
import { createHash, generateKeyPair, randomBytes } from "node:crypto";
import { promisify } from "node:util";
import express, { type NextFunction, type Request, type Response, type Router } from "express";
import Provider, { type Adapter, type AdapterPayload, type KoaContextWithOIDC } from "oidc-provider";
import { z } from "zod";
import type { Config } from "./config";
import type { KeyRing } from "./keys";
import type { Logger } from "./log";

interface DevAccount {
  email: string;
  verified: boolean;
}

const loginFormSchema = z.object({
  email: z.string().trim().toLowerCase().min(3).max(254).email(),
  verified: z.literal("on").optional(),
});

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escape(title)}</title>
<style>body{font-family:system-ui,sans-serif;background:#fff8e6;color:#1d2433;max-width:480px;margin:48px auto;padding:0 16px}
.card{background:#fff;border:2px dashed #d9a400;border-radius:12px;padding:24px}label{display:block;font-weight:600;margin:12px 0 6px}
input[type=email]{width:100%;padding:10px;font-size:1rem;box-sizing:border-box}button{padding:10px 16px;font-size:1rem;margin:16px 8px 0 0}
.muted{color:#5b6475;font-size:.9rem}.error{color:#b42318}</style></head><body><div class="card">${body}</div></body></html>`;
}

function loginPage(uid: string, client: string, error?: string, email = ""): string {
  return page(
    "Dev OIDC · sign in",
    `<h1>Dev OIDC</h1>
<p class="muted">A development OpenID provider, part of this server in local mode. It signs in any address you type, as if its owner had proved it. <strong>${escape(client)}</strong> asks who you are.</p>
<form method="post" action="/dev/oidc/interaction/${escape(uid)}/login">
<label for="email">Email address</label>
<input id="email" name="email" type="email" autocomplete="email" required autofocus value="${escape(email)}">
${error ? `<p class="error" role="alert">${escape(error)}</p>` : ""}
<label><input type="checkbox" name="verified" checked> The provider has verified this address</label>
<button type="submit">Continue</button>
<button type="submit" formaction="/dev/oidc/interaction/${escape(uid)}/abort" formnovalidate>Cancel</button>
</form>`,
  );
}

/**
 * The provider's state (interactions, codes, tokens, grants) in this process's memory: the
 * development provider forgets everything on restart, by design. Expired rows are dropped on read.
 */
function memoryAdapter() {
  const rows = new Map<string, { payload: AdapterPayload; expiresAt: number }>();
  const live = (key: string) => {
    const row = rows.get(key);
    if (row && row.expiresAt <= Date.now()) rows.delete(key);
    return rows.get(key)?.payload;
  };
  return class MemoryAdapter implements Adapter {
    constructor(private readonly model: string) {}
    private key(id: string) {
      return `${this.model}:${id}`;
    }
    async upsert(id: string, payload: AdapterPayload, expiresIn?: number) {
      rows.set(this.key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    }
    async find(id: string) {
      return live(this.key(id));
    }
    async findByUid(uid: string) {
      for (const key of rows.keys()) if (key.startsWith(`${this.model}:`) && live(key)?.uid === uid) return live(key);
      return undefined;
    }
    async findByUserCode(userCode: string) {
      for (const key of rows.keys())
        if (key.startsWith(`${this.model}:`) && live(key)?.userCode === userCode) return live(key);
      return undefined;
    }
    async consume(id: string) {
      const payload = live(this.key(id));
      if (payload) payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      rows.delete(this.key(id));
    }
    async revokeByGrantId(grantId: string) {
      for (const [key, row] of rows) if (row.payload.grantId === grantId) rows.delete(key);
    }
  };
}

/** Express 4 does not see a rejected promise: pass it on to the error handler. */
function handle(fn: (req: Request, res: Response) => Promise<unknown>) {
  return (req: Request, res: Response, next: NextFunction) => {
    fn(req, res).catch(next);
  };
}

// these pages carry their style inline: the app's policy (own scripts and stylesheets only) is relaxed for them alone
const PAGE_POLICY =
  "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

function sendPage(res: Response, status: number, html: string) {
  res
    .status(status)
    .set({ "Cache-Control": "no-store", "Content-Security-Policy": PAGE_POLICY })
    .type("html")
    .send(html);
}

export interface DevOidc {
  /** Express handler for everything under the issuer's path (mount it at `mountPath`) */
  router: Router;
  mountPath: string;
}

export async function createDevOidc(config: Config, keys: KeyRing, log: Logger): Promise<DevOidc | undefined> {
  const dev = config.oauth.dev;
  if (!dev) return undefined;
  const mountPath = new URL(dev.issuer).pathname;
  const accounts = new Map<string, DevAccount>();
  // a new signing key each start: ID tokens of an earlier run are refused, as after a key rotation
  // generated off the event loop: a 2048-bit key takes tens to hundreds of ms
  const { privateKey } = await promisify(generateKeyPair)("rsa", { modulusLength: 2048 });
  const jwk = {
    ...privateKey.export({ format: "jwk" }),
    use: "sig",
    alg: "RS256",
    kid: randomBytes(8).toString("hex"),
  };

  const provider = new Provider(dev.issuer, {
    clients: [
      {
        client_id: dev.clientId,
        client_secret: keys.current.devOidcClient,
        client_name: "PwdlessGs",
        redirect_uris: [new URL("/auth/dev/callback", config.appUrl).href],
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_post",
      },
    ],
    adapter: memoryAdapter(),
    jwks: { keys: [jwk] as never },
    cookies: { keys: [randomBytes(32).toString("base64url")] },
    scopes: ["openid", "email"],
    claims: { openid: ["sub"], email: ["email", "email_verified"] },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    ttl: { AuthorizationCode: 60, Interaction: 600, Session: 600, Grant: 600, IdToken: 600, AccessToken: 600 },
    interactions: { url: (_ctx, interaction) => `${mountPath}/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ sub, email: account.email, email_verified: account.verified }) };
    },
    // the only client is this app itself: consent is implied, as for a first-party client
    async loadExistingGrant(ctx: KoaContextWithOIDC) {
      const clientId = ctx.oidc.client!.clientId;
      const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session!.grantIdFor(clientId);
      const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      if (existing) return existing;
      const grant = new ctx.oidc.provider.Grant({ clientId, accountId: ctx.oidc.session!.accountId });
      grant.addOIDCScope("openid email");
      await grant.save();
      return grant;
    },
    async renderError(ctx, out) {
      ctx.type = "html";
      ctx.set("Content-Security-Policy", PAGE_POLICY);
      ctx.body = page(
        "Dev OIDC · error",
        `<h1>Dev OIDC could not go on</h1><p>${escape(String(out.error_description ?? out.error))}</p><p><a href="/login">Back to sign-in</a></p>`,
      );
    },
    clientBasedCORS: () => false,
  });
  provider.on("server_error", (_ctx, error) => log.error("dev OIDC provider failed", { error }));

  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: "8kb" });
  const expired = (res: Response) =>
    sendPage(
      res,
      400,
      page(
        "Dev OIDC · expired",
        `<h1>This sign-in has expired</h1><p>Go back to the app and start again.</p><p><a href="/login">Back to sign-in</a></p>`,
      ),
    );

  /** The interaction this request belongs to, or null after answering with the "expired" page. */
  const interaction = async (req: Request, res: Response) => {
    try {
      return await provider.interactionDetails(req, res);
    } catch {
      expired(res);
      return null;
    }
  };

  router.get(
    "/interaction/:uid",
    handle(async (req, res) => {
      const details = await interaction(req, res);
      if (!details) return;
      const client = (await provider.Client.find(String(details.params.client_id)))?.clientName ?? "An app";
      sendPage(res, 200, loginPage(details.uid, client));
    }),
  );

  router.post(
    "/interaction/:uid/login",
    form,
    handle(async (req, res) => {
      const details = await interaction(req, res);
      if (!details) return;
      const parsed = loginFormSchema.safeParse(req.body);
      if (!parsed.success) {
        const typed = typeof req.body?.email === "string" ? String(req.body.email).slice(0, 254) : "";
        return sendPage(
          res,
          400,
          loginPage(details.uid, "The app", "Type an email address, e.g. ada@example.com.", typed),
        );
      }
      // a stable, opaque subject per address, as a real provider would give
      const accountId = `dev-${createHash("sha256").update(parsed.data.email).digest("hex").slice(0, 24)}`;
      accounts.set(accountId, { email: parsed.data.email, verified: parsed.data.verified === "on" });
      log.info("dev OIDC: signed in at the provider", {
        event: "dev-oidc-login",
        verified: parsed.data.verified === "on",
      });
      await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
    }),
  );

  router.post(
    "/interaction/:uid/abort",
    form,
    handle(async (req, res) => {
      if (!(await interaction(req, res))) return;
      await provider.interactionFinished(
        req,
        res,
        { error: "access_denied", error_description: "The person cancelled the sign-in." },
        { mergeWithLastSubmission: false },
      );
    }),
  );

  router.use(provider.callback());
  return { router, mountPath };
}
