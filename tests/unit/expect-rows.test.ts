import { afterEach, describe, expect, it, vi } from "vitest";
import { ClusterStore } from "../../cluster";
import { KeyIndex } from "../../cluster/key-index";
import { SlotMultimap } from "../../cluster/slot-multimap";

// rehash is private: spied on through the prototype
const rehashes = () => {
  const keys = vi.spyOn(KeyIndex.prototype as unknown as { rehash(size: number): void }, "rehash");
  const fields = vi.spyOn(SlotMultimap.prototype as unknown as { rehash(size: number): void }, "rehash");
  return () => keys.mock.calls.length + fields.mock.calls.length;
};

function storeWith(rows: number) {
  const store = new ClusterStore({ nodeId: "n", clock: () => 1_800_000_000_000 });
  const users = store.table<{ email: string }>("users", { indexes: ["email"] });
  for (let i = 0; i < rows; i += 1) users.set(`u${i}`, { email: `user${i}@example.com` });
  return { store, users };
}

describe("expectRows: room for rows that come, without rehashing a table's indexes for rows it holds", () => {
  afterEach(() => vi.restoreAllMocks());

  it("sizes an empty table once, so that the rows of a snapshot are added without a rehash", () => {
    const { store, users } = storeWith(0);
    const count = rehashes();
    store.expectRows("users", 20_000);
    const atReserve = count();
    expect(atReserve).toBeGreaterThan(0);
    for (let i = 0; i < 20_000; i += 1) users.set(`u${i}`, { email: `user${i}@example.com` });
    expect(count()).toBe(atReserve);
  });

  it("does not rehash a table that holds as many rows as come (a pull answered with our own rows)", () => {
    const { store, users } = storeWith(20_000);
    const count = rehashes();
    // a joiner mid-catch-up answers the holder's pull with the rows of the buckets that differ
    store.expectRows("users", 20_000);
    expect(count()).toBe(0);
    expect(users.size).toBe(20_000);
  });

  it("still makes room when more rows come than the table holds", () => {
    const { store } = storeWith(100);
    const count = rehashes();
    store.expectRows("users", 50_000);
    expect(count()).toBeGreaterThan(0);
  });
});
