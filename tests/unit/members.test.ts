// Who a node counts as a member: a peer that connected (it holds the key) and died before its
// announcement arrived is still known, and shown down, for the member TTL; then forgotten.
import { describe, expect, it } from "vitest";
import { Members } from "../../cluster/members";

const PEER = "12D3KooWSxLNTAxq1BxwGnsFxLF84WMaaYUJdyLrxjFeF4pWXsTh";

function members() {
  let now = 1_000;
  const connected = new Set<string>();
  const m = new Members({
    selfId: "12D3KooWA4NxArqn9sR3MPFPHfs4uz58F5XQdfebCNjUcZUBAY1a",
    isConnected: (id) => connected.has(id),
    ownAddresses: () => [],
    dial: () => Promise.reject(new Error("no dials in this test")),
    now: () => now,
    log: { info() {}, warn() {}, error() {} },
    minBackoffMs: 100,
    maxBackoffMs: 1_000,
    memberTtlMs: 60_000,
  });
  return { m, connected, advance: (ms: number) => (now += ms) };
}

describe("members", () => {
  it("keeps a peer that connected and left before announcing itself for the member TTL, then forgets it", () => {
    const { m, connected, advance } = members();
    expect(m.knownPeerIds()).toEqual([]);
    connected.add(PEER);
    m.connected(PEER);
    advance(5_000);
    connected.delete(PEER);
    m.disconnected(PEER);
    m.tick();
    expect(m.knownPeerIds()).toEqual([PEER]);
    advance(59_000);
    m.tick();
    expect(m.knownPeerIds()).toEqual([PEER]);
    advance(2_000);
    m.tick();
    expect(m.knownPeerIds()).toEqual([]);
  });
});
