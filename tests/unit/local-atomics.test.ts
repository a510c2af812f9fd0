/** The gossip mode's atomics: one answer per process, with time as a parameter. */
import { describe, expect, it } from "vitest";
import { LocalAtomics } from "../../cluster";

describe("LocalAtomics", () => {
  it("claims once per ttl, and reserves at most the limit per window, with slots given back", async () => {
    let now = 1_000_000;
    const atomics = new LocalAtomics(() => now);
    expect(atomics.scope).toBe("node");
    expect(await Promise.all([1, 2, 3].map(() => atomics.claimOnce("link", "a", 1000)))).toEqual([true, false, false]);
    now += 1001;
    expect(await atomics.claimOnce("link", "a", 1000)).toBe(true);

    const slots = await Promise.all([1, 2, 3, 4].map(() => atomics.reserve("sends", "x", 3, 60_000)));
    expect(slots.map((s) => s.ok)).toEqual([true, true, true, false]);
    expect(slots[3]).toEqual({ ok: false, retryAfterMs: 60_000 });
    const first = slots[0]!;
    if (first.ok) await atomics.release("sends", "x", first.id);
    expect((await atomics.reserve("sends", "x", 3, 60_000)).ok).toBe(true);
    now += 60_001;
    expect((await atomics.reserve("sends", "x", 3, 60_000)).ok).toBe(true);
  });
});
