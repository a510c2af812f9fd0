import { describe, expect, it } from "vitest";
import { ClusterStore } from "../../cluster/index";
import { EmailSendLimiter } from "#app/lib/abuse/rate-limit.server.ts";
import { fakeClusterPort } from "#tests/support/fake-cluster.ts";

function limiter(perClient = 3, total = 5) {
  const clock = { now: 1_700_000_000_000 };
  const store = new ClusterStore({ nodeId: "n1", clock: () => clock.now });
  const port = fakeClusterPort(store);
  return { clock, limits: new EmailSendLimiter(port, { perClient, total, windowMs: 600_000 }, () => clock.now) };
}

describe("link sends per mailbox: reserve before sending, release on failure", () => {
  it("reserves in the same step as the check, so a burst gets exactly the budget", () => {
    const { limits } = limiter();
    const results = Array.from({ length: 12 }, () => limits.reserve("mbox", "client-a"));
    expect(results.filter((r) => r.ok)).toHaveLength(3);
    const refused = results.find((r) => !r.ok);
    expect(refused).toMatchObject({ ok: false, retryAfterSeconds: 600 });
  });

  it("gives a released slot back", () => {
    const { limits } = limiter();
    const tickets = [1, 2, 3].map(() => limits.reserve("mbox", "c"));
    expect(limits.reserve("mbox", "c").ok).toBe(false);
    const first = tickets[0]!;
    if (!first.ok) throw new Error("expected a ticket");
    limits.release(first.ticket);
    expect(limits.reserve("mbox", "c").ok).toBe(true);
    expect(limits.reserve("mbox", "c").ok).toBe(false);
  });

  it("keeps each client's budget apart, under a total for the mailbox", () => {
    const { limits, clock } = limiter(3, 5);
    for (let i = 0; i < 3; i++) expect(limits.reserve("mbox", "stranger").ok).toBe(true);
    expect(limits.reserve("mbox", "stranger").ok).toBe(false);
    expect(limits.reserve("mbox", "owner").ok).toBe(true);
    expect(limits.reserve("mbox", "third").ok).toBe(true);
    // the total (5) is reached: every client waits until the oldest send leaves the window
    const capped = limits.reserve("mbox", "fourth");
    expect(capped.ok).toBe(false);
    clock.now += 600_001;
    expect(limits.reserve("mbox", "fourth").ok).toBe(true);
    expect(limits.reserve("other-mbox", "stranger").ok).toBe(true);
  });
});
