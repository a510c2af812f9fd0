import type { Authenticator } from "remix-auth";
import { Auth } from "./auth.server";
import type { AppContext } from "./context.server";
import { createEmailLinkAuthenticator, SealedEmailLinkStrategy, type SignIn } from "./email-link.server";
import { createLinkCookieStorage, createSealedCookieStorage } from "./link-cookie.server";
import { Audit } from "./audit.server";
import { LinkUses } from "./link-uses.server";
import { EmailSendLimiter, SlidingWindowLimiter } from "./rate-limit.server";
import { magicLinkMessage, Outbox, SmtpMailer, type Mailer } from "./mail.server";
import { OAUTH_COOKIE, OAUTH_COOKIE_TTL_SECONDS, SocialLogin } from "./oauth.server";
import { configuredProviders } from "./providers.server";
import { SessionCookieJar } from "./session-cookie.server";
import { SessionStore } from "./sessions.server";
import { UserStore, type User } from "./users.server";
import { VerifiedAccessTokens } from "./verified-tokens.server";
import { linkRefSchema } from "./email-link.server";

export interface Services {
  ctx: AppContext;
  users: UserStore;
  sessions: SessionStore;
  auth: Auth;
  linkUses: LinkUses;
  links: SealedEmailLinkStrategy<User>;
  emailLink: Authenticator<SignIn<User>>;
  linkCookie: ReturnType<typeof createLinkCookieStorage>;
  mailer: Mailer;
  outbox: Outbox | undefined;
  audit: Audit;
  limits: {
    emails: EmailSendLimiter;
    requestsPerIp: SlidingWindowLimiter;
    openingsPerIp: SlidingWindowLimiter;
  };
  social: SocialLogin;
  stop(): void;
}

const built = new WeakMap<AppContext, Services>();

/** The app's services for this process, built once from the load context. */
export function getServices(ctx: AppContext): Services {
  let services = built.get(ctx);
  if (!services) {
    services = createServices(ctx);
    built.set(ctx, services);
  }
  return services;
}

function createServices(ctx: AppContext): Services {
  const { config, keys, cluster, log } = ctx;
  const now = () => Date.now();
  const secure = config.appUrl.protocol === "https:";
  const users = new UserStore(cluster, now);
  const sessions = new SessionStore(cluster, config.sessionTtlDays, now, config.sessionMaxDays);
  const cookieJar = new SessionCookieJar(keys, { secure, maxAgeSeconds: config.sessionTtlDays * 24 * 3600 });
  const tokens = new VerifiedAccessTokens(
    keys,
    // the audience names the cluster's APIs, not APP_URL: every node (and port) must accept every node's tokens
    { issuer: `urn:pwdless-gs:${config.cluster.name}`, audience: `urn:pwdless-gs:${config.cluster.name}:api` },
    config.accessTokenTtlSeconds,
    now,
  );
  const audit = new Audit(log, keys.current.audit, cluster.nodeId);
  const auth = new Auth(users, sessions, cookieJar, tokens, now, {
    reuseGraceMs: config.refreshReuseGraceSeconds * 1000,
    onReuse: (session, cookieGen) =>
      audit.record("refresh-reuse", {
        uid: session.uid,
        sid: session.sid,
        reason: "old-cookie-generation",
        cookieGen,
        sessionGen: session.gen,
      }),
  });
  const linkUses = new LinkUses(cluster, config.linkTtlMs, now, log);
  const { windowMs } = config.rateLimits;
  const limits = {
    emails: new EmailSendLimiter(
      cluster,
      { perClient: config.rateLimits.emailsPerAddress, total: config.rateLimits.emailsPerAddressTotal, windowMs },
      now,
    ),
    requestsPerIp: new SlidingWindowLimiter(config.rateLimits.requestsPerIp, windowMs, now),
    openingsPerIp: new SlidingWindowLimiter(config.rateLimits.openingsPerIp, windowMs, now),
  };
  const outbox = config.smtpUrl || config.mode === "production" ? undefined : new Outbox(cluster, log);
  const mailer: Mailer = outbox ?? new SmtpMailer(config.smtpUrl!, config.mailFrom);
  const linkCookie = createLinkCookieStorage(keys, { secure, maxAgeSeconds: Math.ceil(config.linkTtlMs / 1000) });

  const links = new SealedEmailLinkStrategy<User>(
    {
      appUrl: config.appUrl,
      keys,
      nodeId: cluster.nodeId,
      ttlMs: config.linkTtlMs,
      sameBrowser: config.linkSameBrowser,
      now,
      usedAlready: (payload) => {
        const seen = linkUses.peek(payload.e, payload);
        return seen === "ok" ? null : seen;
      },
      async sendEmail({ emailAddress, magicLink }) {
        await mailer.send(
          magicLinkMessage(emailAddress, magicLink, config.appUrl, Math.round(config.linkTtlMs / 60_000)),
        );
      },
    },
    async ({ email, form, magicLinkVerify }) => {
      const redirectTo = String(form.get("redirectTo") ?? "/account");
      if (!magicLinkVerify) {
        // asked while sending: nothing is created until the link is opened
        return { user: users.findByEmail(email) as User, redirectTo };
      }
      const ref = linkRefSchema.parse(JSON.parse(String(form.get("_link"))));
      await linkUses.consume(email, ref);
      const user = users.findOrCreateByEmail(email, { provider: "email", subject: email });
      return { user, redirectTo };
    },
  );
  const emailLink = createEmailLinkAuthenticator(linkCookie, links);
  const social = new SocialLogin({
    appUrl: config.appUrl,
    providers: configuredProviders(config, keys),
    storage: createSealedCookieStorage(OAUTH_COOKIE, keys, (k) => k.oauthCookie, {
      secure,
      maxAgeSeconds: OAUTH_COOKIE_TTL_SECONDS,
    }),
    timeoutMs: config.oauth.timeoutMs,
    log,
  });

  const pruneTimer = setInterval(
    () => {
      linkUses.prune();
      sessions.prune();
      limits.emails.prune();
      limits.requestsPerIp.prune();
      limits.openingsPerIp.prune();
    },
    5 * 60 * 1000,
  );
  pruneTimer.unref();

  return {
    ctx,
    users,
    sessions,
    auth,
    linkUses,
    links,
    emailLink,
    linkCookie,
    mailer,
    outbox,
    audit,
    limits,
    social,
    stop: () => clearInterval(pruneTimer),
  };
}
