import { describe, expect, it } from "vitest";
import { ClusterStore } from "../../cluster/index";
import type { Logger } from "#app/lib/context.server.ts";
import { EmailCodes, isCodeError, newCode, WRONG_WINDOW_MS } from "#app/lib/sign-in/code/codes.server.ts";
import { LinkUses } from "#app/lib/sign-in/email-link/link-uses.server.ts";
import type { LinkPayload } from "#app/lib/sign-in/email-link/strategy.server.ts";
import { fakeClusterPort } from "#tests/support/fake-cluster.ts";

const silent: Logger = { info() {}, warn() {}, error() {}, child: () => silent };

function issuer(now: () => number) {
  const store = new ClusterStore({ nodeId: "node-a", clock: now });
  const port = fakeClusterPort(store);
  const linkUses = new LinkUses(port, 15 * 60_000, now, silent);
  const codes = new EmailCodes(
    { cluster: port, linkUses, hashEmail: (e) => `h:${e}`, log: silent },
    { macKey: "k".repeat(64), ttlMs: 15 * 60_000, now },
  );
  return { codes, linkUses };
}

const payload = (e: string, k: string, i: string, c: number): LinkPayload => ({ e, k, i, c, n: "node-a" });

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (error) {
    if (isCodeError(error)) return `${error.problem}/${error.reason}`;
    throw error;
  }
}

describe("emailed codes", () => {
  it("draws six digits, leading zeros included, with no digit favoured", () => {
    const counts = new Array<number>(10).fill(0);
    const draws = 10_000;
    for (let n = 0; n < draws; n++) {
      const code = newCode();
      expect(code).toMatch(/^[0-9]{6}$/);
      for (const d of code) counts[Number(d)]! += 1;
    }
    // chi-square with 9 degrees of freedom: 27.9 is the 0.1 % critical value
    const expected = (draws * 6) / 10;
    const chi = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
    expect(chi).toBeLessThan(27.9);
  });

  it("takes the right code once, and the link's use with it", async () => {
    let t = 1_700_000_000_000;
    const { codes, linkUses } = issuer(() => t);
    codes.issued(payload("a@example.com", "123456", "link-id-0001", t));
    t += 1000;
    expect(await refusal(codes.use("a@example.com", "123456"))).toBe("ok");
    expect(linkUses.peek("a@example.com", { i: "link-id-0001", c: t - 1000, n: "node-a" })).toBe("used");
    expect(await refusal(codes.use("a@example.com", "123456"))).toBe("expired/code-none");
  });

  it("burns on the fifth wrong try even when all five are in flight at once", async () => {
    const t = 1_700_000_000_000;
    const { codes } = issuer(() => t);
    codes.issued(payload("b@example.com", "654321", "link-id-0002", t));
    const answers = await Promise.all(
      ["000001", "000002", "000003", "000004", "000005"].map((c) => refusal(codes.use("b@example.com", c))),
    );
    expect(answers.filter((a) => a === "burnt/code-burnt")).toHaveLength(1);
    expect(answers.filter((a) => a.startsWith("wrong/"))).toHaveLength(4);
    // the right code after that is told the code was burnt, not that it is wrong
    expect(await refusal(codes.use("b@example.com", "654321"))).toBe("burnt/code-burnt");
  });

  it("refuses an address after 10 wrong tries in an hour over several codes, and counts again after it", async () => {
    let t = 1_700_000_000_000;
    const { codes } = issuer(() => t);
    for (let n = 0; n < 10; n++) {
      if (n % 4 === 0) codes.issued(payload("c@example.com", "111111", `link-id-1${n}00`, t));
      expect(await refusal(codes.use("c@example.com", "999999"))).toMatch(/^wrong\//);
      t += 1000;
    }
    codes.issued(payload("c@example.com", "222222", "link-id-9999", t));
    expect(await refusal(codes.use("c@example.com", "222222"))).toBe("budget/wrong-per-address");
    t += WRONG_WINDOW_MS;
    // an hour later that code has expired with its link, but a new one is accepted again
    expect(await refusal(codes.use("c@example.com", "222222"))).toBe("expired/code-expired");
    codes.issued(payload("c@example.com", "333333", "link-id-8888", t));
    expect(await refusal(codes.use("c@example.com", "333333"))).toBe("ok");
  });

  it("refuses malformed codes before counting them", async () => {
    const { codes } = issuer(() => 1_700_000_000_000);
    for (const bad of ["", "12345", "1234567", "abcdef", "12 456"]) {
      expect(await refusal(codes.use("d@example.com", bad))).toBe("malformed/not-six-digits");
    }
  });
});
