// The cluster port's doorman alone: members' reserved handshake slots, strangers' fair shares.
import type { MultiaddrConnection } from "@libp2p/interface";
import { multiaddr } from "@multiformats/multiaddr";
import { afterEach, describe, expect, it, vi } from "vitest";
import { InboundGate } from "../../cluster/inbound-gate";

interface FakeConn {
  conn: MultiaddrConnection;
  aborted: () => boolean;
  upgrade: () => void;
}

/** A connection in its upgrade, as libp2p hands it to the gater: address, timeline, abort. */
function connection(ip: string): FakeConn {
  const timeline: { open: number; upgraded?: number; close?: number } = { open: Date.now() };
  let aborted = false;
  const conn = {
    remoteAddr: multiaddr(`/ip4/${ip}/tcp/40000`),
    timeline,
    abort: () => {
      aborted = true;
      timeline.close = Date.now();
    },
  } as unknown as MultiaddrConnection;
  return { conn, aborted: () => aborted, upgrade: () => (timeline.upgraded = Date.now()) };
}

const flooders = Array.from({ length: 10 }, (_, i) => `127.0.0.${20 + i}`);

afterEach(() => {
  vi.useRealTimers();
});

describe("the inbound gate", () => {
  it("refuses every non-member at once when members come from CLUSTER_PEERS", () => {
    const gate = new InboundGate();
    gate.allowMembers("static", ["10.0.0.1"]);
    gate.authenticated("10.0.0.9"); // a former peer's address is not on the operator's list
    expect(gate.deny(connection("10.0.0.2").conn)).toBe(true);
    expect(gate.deny(connection("10.0.0.9").conn)).toBe(true);
    expect(gate.deny(connection("10.0.0.1").conn)).toBe(false);
    expect(gate.refused["not-a-member"]).toBe(2);
  });

  it("keeps members' slots free however many strangers wait, from however many addresses", () => {
    const gate = new InboundGate();
    gate.authenticated("127.0.0.1");
    for (let round = 0; round < 10; round++) for (const ip of flooders) gate.deny(connection(ip).conn);
    expect(gate.pending().unknown).toBeLessThanOrEqual(32);
    const member = connection("127.0.0.1");
    expect(gate.deny(member.conn)).toBe(false);
    expect(gate.admitted.member).toBe(1);
    expect(gate.refused["member-slots-full"]).toBe(0);
  });

  it("shares the strangers' pool fairly: each address its share, and a newcomer takes a slot from the heaviest", () => {
    const gate = new InboundGate({ unknownSlots: 32, maxPendingPerAddress: 8 });
    // one address first takes up to 8, then nine more arrive and the pool fills
    const first = Array.from({ length: 8 }, () => connection(flooders[0]!));
    expect(first.map((c) => gate.deny(c.conn)).filter((refused) => !refused)).toHaveLength(8);
    for (let round = 0; round < 8; round++) for (const ip of flooders.slice(1)) gate.deny(connection(ip).conn);
    expect(gate.pending().unknown).toBe(32);
    // the first address was made to give slots back as the others came
    expect(first.filter((c) => !c.aborted()).length).toBeLessThan(8);
    // a new member nobody knows yet: the heaviest address gives up its oldest slot
    const evicted = gate.refused.evicted;
    const stranger = connection("127.0.0.3");
    expect(gate.deny(stranger.conn)).toBe(false);
    expect(gate.refused.evicted).toBe(evicted + 1);
    expect(gate.pending().unknown).toBe(32);
    // and it cannot be pushed out by the flood in turn: it holds fewer than everyone else
    for (const ip of flooders) gate.deny(connection(ip).conn);
    expect(stranger.aborted()).toBe(false);
  });

  it("gives a stranger's connection a short time to finish its handshake, and no more", async () => {
    vi.useFakeTimers();
    const gate = new InboundGate({ unknownTimeoutMs: 1_000 });
    const slow = connection("127.0.0.20");
    const quick = connection("127.0.0.21");
    gate.deny(slow.conn);
    gate.deny(quick.conn);
    quick.upgrade();
    await vi.advanceTimersByTimeAsync(1_001);
    expect(slow.aborted()).toBe(true);
    expect(quick.aborted()).toBe(false);
    expect(gate.refused["too-slow"]).toBe(1);
    expect(gate.pending().unknown).toBe(0);
  });

  it("counts a member's handshakes apart and bounds them too", () => {
    const gate = new InboundGate({ maxPendingPerMember: 3 });
    gate.allowMembers("local", ["127.0.0.1"]);
    const results = Array.from({ length: 4 }, () => gate.deny(connection("127.0.0.1").conn));
    expect(results).toEqual([false, false, false, true]);
    expect(gate.refused["member-slots-full"]).toBe(1);
    expect(gate.pending()).toEqual({ member: 3, unknown: 0 });
  });

  it("treats ::ffff:127.0.0.1 as 127.0.0.1", () => {
    const gate = new InboundGate();
    gate.authenticated("::ffff:127.0.0.1");
    expect(gate.isMember("127.0.0.1")).toBe(true);
  });
});
