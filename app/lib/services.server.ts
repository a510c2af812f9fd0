import type { Authenticator } from "remix-auth";
import { AccessTokens } from "#app/lib/session/access-token.server.ts";
import { Auth } from "#app/lib/session/auth.server.ts";
import type { AppContext } from "./context.server";
import {
  createEmailLinkAuthenticator,
  SealedEmailLinkStrategy,
  type SignIn,
} from "#app/lib/sign-in/email-link/strategy.server.ts";
import { createLinkCookieStorage, createSealedCookieStorage } from "#app/lib/sign-in/email-link/link-cookie.server.ts";
import { Audit } from "#app/lib/abuse/audit.server.ts";
import { LinkUses } from "#app/lib/sign-in/email-link/link-uses.server.ts";
import { EmailSendLimiter, SlidingWindowLimiter } from "#app/lib/abuse/rate-limit.server.ts";
import { magicLinkMessage, Outbox, SmtpMailer, type Mailer } from "#app/lib/ops/mail.server.ts";
import { OAUTH_COOKIE, OAUTH_COOKIE_TTL_SECONDS, SocialLogin } from "#app/lib/sign-in/social/oauth.server.ts";
import { configuredProviders } from "#app/lib/sign-in/social/providers.server.ts";
import { SessionCookieJar } from "#app/lib/session/session-cookie.server.ts";
import { SessionStore } from "#app/lib/session/sessions.server.ts";
import { UserStore, type User } from "#app/lib/accounts/users.server.ts";
import { linkRefSchema } from "#app/lib/sign-in/email-link/strategy.server.ts";

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
  const tokens = new AccessTokens(keys, `urn:pwdless-gs:${config.cluster.name}`, config.accessTokenTtlSeconds, now);
  const auth = new Auth(users, sessions, cookieJar, tokens, now);
  const linkUses = new LinkUses(cluster, config.linkTtlMs, now, log);
  const audit = new Audit(log, keys.current.audit, cluster.nodeId);
  const { windowMs } = config.rateLimits;
  const limits = {
    emails: new EmailSendLimiter(cluster, config.rateLimits.emailsPerAddress, windowMs, now),
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
