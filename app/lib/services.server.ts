import type { Authenticator } from "remix-auth";
import { AccessTokens } from "./access-token.server";
import { Auth } from "./auth.server";
import type { AppContext } from "./context.server";
import { createEmailLinkAuthenticator, SealedEmailLinkStrategy, type SignIn } from "./email-link.server";
import { createLinkCookieStorage } from "./link-cookie.server";
import { LinkUses } from "./link-uses.server";
import { magicLinkMessage, Outbox, SmtpMailer, type Mailer } from "./mail.server";
import { SessionCookieJar } from "./session-cookie.server";
import { SessionStore } from "./sessions.server";
import { UserStore, type User } from "./users.server";
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
  const sessions = new SessionStore(cluster, config.sessionTtlDays, now);
  const cookieJar = new SessionCookieJar(keys, { secure, maxAgeSeconds: config.sessionTtlDays * 24 * 3600 });
  const tokens = new AccessTokens(keys, `urn:pwdless-gs:${config.cluster.name}`, config.accessTokenTtlSeconds, now);
  const auth = new Auth(users, sessions, cookieJar, tokens, now);
  const linkUses = new LinkUses(cluster, config.linkTtlMs, now, log);
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
        await mailer.send(magicLinkMessage(emailAddress, magicLink, config.appUrl, Math.round(config.linkTtlMs / 60_000)));
        log.info("sign-in link sent", { node: cluster.nodeId, via: outbox ? "outbox" : "smtp" });
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

  const pruneTimer = setInterval(() => linkUses.prune(), 10 * 60 * 1000);
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
    stop: () => clearInterval(pruneTimer),
  };
}
