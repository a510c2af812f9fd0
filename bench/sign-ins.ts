/**
 * Email sign-ins against a real server, as benches measure them: every link is requested first (over
 * real SMTP), then the links are confirmed `concurrency` at a time; the confirmation is the
 * sign-in's write (user, address claim, session, link use; answered after the commit). Used by
 * bench:durable and bench:webhooks.
 */
import { CookieJar } from "../tests/support/cookie-jar";
import { browse, pathOf, requestLink } from "../tests/support/flows";
import { uniqueName, type NodeProcess } from "../tests/support/node";
import type { TestSmtpServer } from "../tests/support/smtp";

export interface SignInFigures {
  signIns: number;
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
  /** the addresses signed in, in the order confirmed */
  emails: string[];
}

export const pct = (sorted: number[], p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
export const round = (n: number, digits = 1) => Number(n.toFixed(digits));

/** Environment a sign-in bench's node needs: its SMTP, and rate limits out of the way. */
export const signInBenchEnv = (smtp: TestSmtpServer): Record<string, string> => ({
  SMTP_URL: smtp.url,
  RATE_LIMIT_REQUESTS_PER_IP: "1000000",
  RATE_LIMIT_OPENINGS_PER_IP: "1000000",
});

export async function confirmSignIns(
  node: NodeProcess,
  smtp: TestSmtpServer,
  options: { count: number; concurrency: number; tag: string },
): Promise<SignInFigures> {
  const pending: { jar: CookieJar; link: string; email: string }[] = [];
  const tag = uniqueName(options.tag);
  for (let i = 0; i < options.count; i++) {
    const jar = new CookieJar();
    const email = `${tag}-${i}@example.com`;
    pending.push({ jar, email, link: await requestLink(node, jar, email, smtp) });
  }
  const latencies: number[] = [];
  const emails: string[] = [];
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (next < pending.length) {
        const { jar, link, email } = pending[next++]!;
        const t0 = performance.now();
        const res = await browse(node, jar, pathOf(link), { method: "POST" });
        latencies.push(performance.now() - t0);
        if (res.status !== 302) throw new Error(`a sign-in answered ${res.status}`);
        emails.push(email);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    signIns: latencies.length,
    perSecond: round(latencies.length / seconds),
    p50: round(pct(latencies, 50)),
    p99: round(pct(latencies, 99)),
    max: round(latencies[latencies.length - 1]!),
    emails,
  };
}
