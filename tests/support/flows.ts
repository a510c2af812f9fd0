import { CookieJar } from "./cookie-jar";
import type { NodeProcess } from "./node";
import { codeIn, linkIn, type TestSmtpServer } from "./smtp";
import { waitFor } from "./wait";

export const form = (fields: Record<string, string>) => ({
  method: "POST",
  headers: { "Content-Type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams(fields).toString(),
});

/** Send a request with the jar's cookies and keep what the response sets. */
export async function browse(
  node: NodeProcess,
  jar: CookieJar,
  pathname: string,
  init: RequestInit = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  if (jar.header()) headers.set("Cookie", jar.header());
  const response = await node.fetch(pathname, { ...init, headers });
  jar.take(response);
  return response;
}

/** Ask for a link and return the one that arrives by SMTP (or in the outbox when no SMTP is given). */
export async function requestLink(
  node: NodeProcess,
  jar: CookieJar,
  email: string,
  smtp?: TestSmtpServer,
  extra: Record<string, string> = {},
): Promise<string> {
  const before = smtp ? smtp.to(email).length : await outboxCount(node, email);
  const res = await browse(node, jar, "/login", form({ email, ...extra }));
  if (res.status !== 302) throw new Error(`POST /login answered ${res.status}: ${await res.text()}`);
  if (smtp) {
    const mail = await waitFor(`a mail to ${email}`, () => smtp.to(email)[before]);
    return linkIn(mail);
  }
  return waitFor(`an outbox mail to ${email}`, async () => {
    const { messages: mine } = (await (
      await node.fetch(`/dev/mailbox.json?to=${encodeURIComponent(email)}`)
    ).json()) as {
      messages: { to: string; text: string }[];
    };
    if (mine.length <= before) return undefined;
    return /https?:\/\/\S+\/auth\/email\/callback\?token=\S+/.exec(mine[0]!.text)?.[0];
  });
}

/** Ask for a sign-in email on the page and return its link and code (SMTP, or the outbox). */
export async function requestMail(
  node: NodeProcess,
  jar: CookieJar,
  email: string,
  smtp?: TestSmtpServer,
  extra: Record<string, string> = {},
): Promise<{ link: string; code: string }> {
  const before = smtp ? smtp.to(email).length : await outboxCount(node, email);
  const res = await browse(node, jar, "/login", form({ email, ...extra }));
  if (res.status !== 302) throw new Error(`POST /login answered ${res.status}: ${await res.text()}`);
  const mail = smtp
    ? await waitFor(`a mail to ${email}`, () => smtp.to(email)[before])
    : await waitFor(`an outbox mail to ${email}`, async () => {
        const { messages } = (await (await node.fetch("/dev/mailbox.json")).json()) as {
          messages: { to: string; text: string }[];
        };
        const mine = messages.filter((m) => m.to === email);
        return mine.length > before ? mine[0] : undefined;
      });
  return { link: linkIn(mail), code: codeIn(mail) };
}

async function outboxCount(node: NodeProcess, email: string): Promise<number> {
  const res = await node.fetch(`/dev/mailbox.json?to=${encodeURIComponent(email)}`);
  if (!res.ok) return 0;
  const { messages } = (await res.json()) as { messages: { to: string }[] };
  return messages.length;
}

/** The path and query of a link, to open it on any node. */
export function pathOf(link: string): string {
  const url = new URL(link);
  return `${url.pathname}${url.search}`;
}

/** The whole email-link sign-in on one node; returns the signed-in jar. */
export async function signIn(
  node: NodeProcess,
  email: string,
  smtp?: TestSmtpServer,
  jar = new CookieJar(),
): Promise<CookieJar> {
  const link = await requestLink(node, jar, email, smtp);
  const res = await browse(node, jar, pathOf(link), { method: "POST" });
  if (res.status !== 302) throw new Error(`confirming the link answered ${res.status}: ${await res.text()}`);
  return jar;
}

export async function accessToken(node: NodeProcess, jar: CookieJar): Promise<string> {
  const res = await browse(node, jar, "/auth/refresh", { method: "POST" });
  if (res.status !== 200) throw new Error(`/auth/refresh answered ${res.status}`);
  return ((await res.json()) as { access_token: string }).access_token;
}
