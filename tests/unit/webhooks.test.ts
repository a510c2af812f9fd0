// The webhook queue on one node, with the app's own stores on a real ClusterStore: a receiver that
// is down costs only the bounded queue (the oldest dropped, counted and logged once), and a failed
// delivery is retried with exponentially growing waits until it gets through.
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { ClusterStore } from "#cluster";
import type { Logger } from "#app/lib/context.server.ts";
import { AccountStatus } from "#app/lib/accounts/status.server.ts";
import { UserStore } from "#app/lib/accounts/users.server.ts";
import { SessionStore } from "#app/lib/session/sessions.server.ts";
import { Webhooks } from "#app/lib/webhooks/webhooks.server.ts";
import { fakeClusterPort } from "#tests/support/fake-cluster.ts";
import { waitFor } from "#tests/support/wait.ts";
import { WebhookReceiver } from "#tests/support/webhook-receiver.ts";

type Line = { level: "warn" | "error"; msg: string; fields: Record<string, unknown> };

function node(url: string, secret: Uint8Array, options: { maxQueue: number; firstBackoffMs?: number }) {
  const store = new ClusterStore({ nodeId: "n1" });
  const cluster = fakeClusterPort(store);
  const users = new UserStore(cluster, Date.now);
  const sessions = new SessionStore(cluster, 30, Date.now);
  const status = new AccountStatus(cluster, Date.now);
  const lines: Line[] = [];
  const log: Logger = {
    info() {},
    warn: (msg, fields = {}) => void lines.push({ level: "warn", msg, fields }),
    error: (msg, fields = {}) => void lines.push({ level: "error", msg, fields }),
    child: () => log,
  };
  const webhooks = new Webhooks(cluster, { users: users.rows, disabled: status.rows, ...sessions.rows }, log, {
    settings: { urls: [url], secret, maxQueue: options.maxQueue, retryForMs: 24 * 3600_000 },
    firstBackoffMs: options.firstBackoffMs ?? 60_000,
  });
  return { store, users, sessions, webhooks, lines };
}

const running: Array<{ stop(): void }> = [];
afterEach(() => {
  for (const r of running.splice(0)) r.stop();
});

describe("webhook delivery", () => {
  it("keeps at most WEBHOOK_MAX_QUEUE events when the receiver is down: the oldest are dropped, counted and logged once", async () => {
    // port 1 on loopback: nothing listens, every attempt fails at once
    const n = node("http://127.0.0.1:1/hooks", randomBytes(32), { maxQueue: 3 });
    running.push(n.webhooks);
    const user = n.users.findOrCreateByEmail("busy@example.com", { provider: "email", subject: "busy@example.com" });
    for (let i = 0; i < 4; i++) n.sessions.createSession(user.id, { method: "email", userAgent: "test" });
    // user.created and four session.created: five events for a queue of three
    expect(n.webhooks.stats.dropped).toBe(2);
    expect(n.webhooks.stats.queued).toBe(3);
    const rows = [...n.store.table<{ type: string }>("webhookEvents").scan()].map(([, row]) => row.type);
    expect(rows).toEqual(["session.created", "session.created", "session.created"]);
    // one line, not one per event: further drops within 10 s are counted into the next line
    const dropLines = n.lines.filter((l) => /queue is full/.test(l.msg));
    expect(dropLines).toHaveLength(1);
    expect(dropLines[0]!.fields).toMatchObject({ dropped: 1, maxQueue: 3 });
    await waitFor("the first failed attempts", () => n.webhooks.stats.failedAttempts >= 3);
    expect(n.webhooks.stats.delivered).toBe(0);
  });

  it("retries a failed delivery with doubling waits, and delivers once the receiver answers", async () => {
    const secret = `whsec_${randomBytes(32).toString("base64")}`;
    const receiver = await new WebhookReceiver(secret).start();
    running.push({ stop: () => void receiver.stop() });
    receiver.down = true;
    const key = new Uint8Array(Buffer.from(secret.slice("whsec_".length), "base64"));
    const n = node(receiver.url, key, { maxQueue: 100, firstBackoffMs: 20 });
    running.push(n.webhooks);
    n.users.findOrCreateByEmail("retried@example.com", { provider: "email", subject: "retried@example.com" });
    // the 1st and every 5th failure is logged with its next wait: 20 ms, then 20 × 2⁴
    await waitFor(
      "five failed attempts",
      () => n.lines.filter((l) => /delivery failed/.test(l.msg)).length >= 2,
      20_000,
      10,
    );
    const waits = n.lines
      .filter((l) => /delivery failed/.test(l.msg))
      .map((l) => [l.fields.attempt, l.fields.retryInMs]);
    expect(waits.slice(0, 2)).toEqual([
      [1, 20],
      [5, 320],
    ]);
    receiver.down = false;
    await waitFor("the delivery", () => receiver.of("user.created").length === 1, 20_000, 10);
    expect(receiver.badSignatures).toEqual([]);
    await waitFor("the node to count it delivered", () => n.webhooks.stats.delivered === 1);
    // the row goes shortly after, with any others delivered meanwhile (one commit for them all)
    await waitFor("the delivered event's row to be deleted", () => n.store.table("webhookEvents").size === 0);
  });
});
