import type { Authenticator } from "remix-auth";
import { VerifiedAccessTokens } from "#app/lib/session/verified-tokens.server.ts";
import { Auth } from "#app/lib/session/auth.server.ts";
import type { AppContext } from "./context.server";
import {
  createEmailLinkAuthenticator,
  EmailLinkStrategy,
  type SignIn,
} from "#app/lib/sign-in/email-link/strategy.server.ts";
import { createHmac } from "node:crypto";
import { EmailCodes, newCode } from "#app/lib/sign-in/code/codes.server.ts";
import type { FinishDeps } from "#app/lib/sign-in/finish.server.ts";
import { SignInMethods } from "#app/lib/sign-in/methods.server.ts";
import { PasskeyStore } from "#app/lib/accounts/passkeys.server.ts";
import { Passkeys } from "#app/lib/sign-in/passkey/passkey.server.ts";
import type { RequestLinkDeps } from "#app/lib/sign-in/email-link/request.server.ts";
import { createLinkCookieStorage, createSealedCookieStorage } from "#app/lib/sign-in/email-link/link-cookie.server.ts";
import { Audit } from "#app/lib/abuse/audit.server.ts";
import { LinkUses } from "#app/lib/sign-in/email-link/link-uses.server.ts";
import { EmailSendLimiter, SlidingWindowLimiter } from "#app/lib/abuse/rate-limit.server.ts";
import { Outbox, SmtpMailer, type Mailer } from "#app/lib/ops/mail.server.ts";
import { Emails } from "#app/lib/mail/messages.server.ts";
import { OAUTH_COOKIE, OAUTH_COOKIE_TTL_SECONDS, SocialLogin } from "#app/lib/sign-in/social/oauth.server.ts";
import { configuredProviders } from "#app/lib/sign-in/social/providers.server.ts";
import { SessionCookieJar } from "#app/lib/session/session-cookie.server.ts";
import { SessionStore } from "#app/lib/session/sessions.server.ts";
import { UserStore } from "#app/lib/accounts/users.server.ts";
import { AccountStatus } from "#app/lib/accounts/status.server.ts";
import { SendTiming, SignupPolicy } from "#app/lib/accounts/signup.server.ts";
import { AccountLifecycle } from "#app/lib/accounts/lifecycle.server.ts";
import { AdminDesk } from "#app/lib/admin/admin.server.ts";
import { Webhooks } from "#app/lib/webhooks/webhooks.server.ts";

export interface Services {
  ctx: AppContext;
  users: UserStore;
  sessions: SessionStore;
  auth: Auth;
  linkUses: LinkUses;
  links: EmailLinkStrategy;
  emailLink: Authenticator<SignIn>;
  codes: EmailCodes;
  /** LINK_SAME_BROWSER, for the code's binding to the client that asked */
  sameBrowser: boolean;
  /** LINK_TTL_MINUTES, in ms: how long a link and its code work */
  linkTtlMs: number;
  passkeyStore: PasskeyStore;
  passkeys: Passkeys;
  methods: SignInMethods;
  /** what finishSignIn needs: every method ends there */
  finish: FinishDeps;
  /** what asking for a sign-in email needs */
  linkRequests: RequestLinkDeps;
  linkCookie: ReturnType<typeof createLinkCookieStorage>;
  mailer: Mailer;
  outbox: Outbox | undefined;
  audit: Audit;
  limits: {
    emails: EmailSendLimiter;
    requestsPerIp: SlidingWindowLimiter;
    openingsPerIp: SlidingWindowLimiter;
    /** openings of tokens that do not open (junk): their own budget, so they never spend the one above */
    junkOpeningsPerIp: SlidingWindowLimiter;
    /** typed codes per client IP, per node (the per-address budget is cluster-wide, in EmailCodes) */
    codesPerIp: SlidingWindowLimiter;
  };
  social: SocialLogin;
  /** disabled accounts */
  status: AccountStatus;
  /** who may sign up (SIGNUP…, invites) */
  signup: SignupPolicy;
  /** address change, deletion, export, erasure */
  lifecycle: AccountLifecycle;
  admin: AdminDesk;
  webhooks: Webhooks;
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
  const status = new AccountStatus(cluster, now);
  // a disabled user's sessions are refused wherever they are read, on every node
  sessions.refuseUsers((uid) => status.isDisabled(uid));
  const signup = new SignupPolicy(cluster, config.signup, now);
  const sendTiming = new SendTiming();
  const cookieJar = new SessionCookieJar(keys, {
    secure,
    maxAgeSeconds: config.sessionTtlDays * 24 * 3600,
    domain: config.cookieDomain,
  });
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
    junkOpeningsPerIp: new SlidingWindowLimiter(config.rateLimits.openingsPerIp, windowMs, now),
    codesPerIp: new SlidingWindowLimiter(config.rateLimits.openingsPerIp, windowMs, now),
  };
  const outbox = config.smtpUrl || config.mode === "production" ? undefined : new Outbox(cluster, log);
  const mailer: Mailer = outbox ?? new SmtpMailer(config.smtpUrl!, config.mailFrom);
  const emails = new Emails({
    brand: config.brand,
    templates: config.emailTemplates,
    linkTtlMinutes: Math.round(config.linkTtlMs / 60_000),
  });
  const linkCookie = createLinkCookieStorage(keys, { secure, maxAgeSeconds: Math.ceil(config.linkTtlMs / 1000) });

  const codes = new EmailCodes(
    { cluster, linkUses, hashEmail: (email) => audit.hashEmail(email), log },
    // a subkey of the link key: the MAC of a code is only worth anything together with its link's id
    {
      macKey: createHmac("sha256", keys.current.link).update("email-code").digest("hex"),
      ttlMs: config.linkTtlMs,
      now,
    },
  );
  const links = new EmailLinkStrategy(
    {
      appUrl: config.appUrl,
      keys,
      nodeId: cluster.nodeId,
      ttlMs: config.linkTtlMs,
      sameBrowser: config.linkSameBrowser,
      now,
      newCode,
      usedAlready: (payload) => {
        const seen = linkUses.peek(payload.e, payload);
        return seen === "ok" ? null : seen;
      },
      async sendEmail({ email, link, code, payload, locale }) {
        // the code is pending whether or not it is mailed, so typed codes get the same answers (and
        // the same per-address budget) for an address that may not sign up as for one that may
        codes.issued(payload);
        // an address that may not sign up gets no mail, and the same answer after the same time
        if (!users.findByEmail(email) && !signup.mayCreate(email)) {
          audit.record("refused", { email, reason: "signup-not-allowed", method: "email" });
          await sendTiming.imitate();
          return;
        }
        const started = performance.now();
        await mailer.send(emails.signIn(email, link, code, locale));
        sendTiming.note(performance.now() - started);
      },
    },
    // every check has passed but the one use, which the issuing node decides
    async ({ email, redirectTo, link }) => {
      const release = await linkUses.consume(email, link);
      return { email, redirectTo, release };
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

  const methods = new SignInMethods(social.providers);
  const passkeyStore = new PasskeyStore(cluster, now);
  const passkeys = new Passkeys(
    { cluster, users, passkeys: passkeyStore, keys },
    { appUrl: config.appUrl, rpName: config.appUrl.hostname, now },
  );
  const finish: FinishDeps = {
    users,
    auth,
    audit,
    redirects: config,
    durable: () => cluster.durable(),
    status,
    signup,
  };
  const lifecycle = new AccountLifecycle(
    { cluster, users, sessions, passkeys: passkeyStore, status, signup, mailer, emails, audit, log, keys },
    { appUrl: config.appUrl, ttlMs: config.linkTtlMs, now },
  );
  const admin = new AdminDesk(
    { auth, users, sessions, passkeys: passkeyStore, status, signup, lifecycle, audit, mailer, emails, log },
    { token: config.adminApiToken, emails: config.adminEmails, appUrl: config.appUrl },
  );
  const webhooks = new Webhooks(cluster, { users: users.rows, disabled: status.rows, ...sessions.rows }, log, {
    settings: config.webhooks,
    now,
  });
  // every table holding rows about a person is named here or in its own eraser (README, Erasure)
  lifecycle.addEraser("webhook-events", (user) => webhooks.forgetUser(user.id));
  lifecycle.addEraser("link-records", (user) => linkUses.forget(user.email));
  if (outbox) lifecycle.addEraser("outbox", (user) => outbox.forget(user.email));

  const pruneTimer = setInterval(
    () => {
      linkUses.prune();
      sessions.prune();
      codes.prune();
      passkeys.prune();
      limits.codesPerIp.prune();
      limits.emails.prune();
      limits.requestsPerIp.prune();
      limits.openingsPerIp.prune();
      limits.junkOpeningsPerIp.prune();
      signup.prune();
      lifecycle.prune();
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
    codes,
    sameBrowser: config.linkSameBrowser,
    linkTtlMs: config.linkTtlMs,
    passkeyStore,
    passkeys,
    methods,
    finish,
    linkRequests: { limits, audit, links, linkCookie, log, via: outbox ? "outbox" : "smtp" },
    linkCookie,
    mailer,
    outbox,
    audit,
    limits,
    social,
    status,
    signup,
    lifecycle,
    admin,
    webhooks,
    stop: () => {
      clearInterval(pruneTimer);
      webhooks.stop();
    },
  };
}
