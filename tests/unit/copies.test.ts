// The replicated-acknowledgement ledger alone: which writes a peer confirmed, and who waits.
import { afterEach, describe, expect, it, vi } from "vitest";
import { ClusterUnavailableError, type RecordEnvelope } from "../../cluster";
import { Copies, type AckSettings } from "../../cluster/copies";
import { memoryLogger } from "./cluster-support";

const record = (i: number): RecordEnvelope => ({
  table: "sessions",
  key: `s${i}`,
  value: { i },
  stamp: { t: 1_000 + i, c: 0, n: "writer" },
});

function ledger(settings: Partial<AckSettings> = {}, maxBuffered?: number) {
  const log = memoryLogger();
  let writes = 0;
  const copies = new Copies(
    { copies: 2, timeoutMs: 1_000, strict: false, ...settings },
    { log, now: Date.now, onWrite: () => (writes += 1) },
    maxBuffered,
  );
  let n = 0;
  const write = (count = 1) => {
    for (let i = 0; i < count; i++) copies.record(record((n += 1)));
  };
  return { copies, log, write, writes: () => writes };
}

/** A promise's state after the microtasks run. */
async function state(promise: Promise<void>): Promise<"pending" | "resolved" | "rejected"> {
  let result: "pending" | "resolved" | "rejected" = "pending";
  promise.then(
    () => (result = "resolved"),
    () => (result = "rejected"),
  );
  await Promise.resolve();
  await Promise.resolve();
  return result;
}

afterEach(() => {
  vi.useRealTimers();
});

describe("replicated acknowledgements: the ledger", () => {
  it("with ACK_COPIES=1 answers at once and keeps nothing", async () => {
    const { copies, write, writes } = ledger({ copies: 1 });
    copies.setAble(2);
    write(3);
    expect(await state(copies.wait())).toBe("resolved");
    expect(copies.status().buffered).toBe(0);
    expect(writes()).toBe(0);
  });

  it("a lone node answers with its own copy, counted as alone", async () => {
    const { copies, write } = ledger();
    write(2);
    expect(await state(copies.wait())).toBe("resolved");
    expect(copies.status().counters.alone).toBe(1);
    expect(copies.status().buffered).toBe(0);
  });

  it("waits until a peer confirms every write so far, then answers", async () => {
    const { copies, write } = ledger();
    copies.setAble(1);
    copies.openLink("p1");
    write(3);
    const answer = copies.wait();
    const frame = copies.next("p1", 100, 1_000_000);
    expect(frame?.upTo).toBe(3);
    expect(frame?.json.map((j) => (JSON.parse(j) as RecordEnvelope).key)).toEqual(["s1", "s2", "s3"]);
    copies.acked("p1", 2);
    expect(await state(answer)).toBe("pending");
    copies.acked("p1", 3);
    expect(await state(answer)).toBe("resolved");
    expect(copies.status()).toMatchObject({ counters: { copied: 1 }, buffered: 0, waiting: 0 });
  });

  it("ignores a confirmation of more than was sent on the link", async () => {
    const { copies, write } = ledger();
    copies.setAble(1);
    copies.openLink("p1");
    write(2);
    copies.next("p1", 1, 1_000_000); // only s1 sent
    const answer = copies.wait();
    copies.acked("p1", 2);
    expect(await state(answer)).toBe("pending");
  });

  it("sends a link opened later everything not copied yet, and a lagging link skips what another copied", async () => {
    const { copies, write } = ledger();
    copies.setAble(2);
    copies.openLink("p1");
    write(2);
    expect(copies.next("p1", 100, 1_000_000)?.upTo).toBe(2);
    copies.closeLink("p1"); // p1's connection dropped before it confirmed
    copies.openLink("p2");
    write(1);
    const resent = copies.next("p2", 100, 1_000_000);
    expect(resent?.json.map((j) => (JSON.parse(j) as RecordEnvelope).key)).toEqual(["s1", "s2", "s3"]);
    copies.openLink("p3");
    copies.acked("p2", 3);
    expect(copies.status().buffered).toBe(0);
    write(1);
    expect(copies.next("p3", 100, 1_000_000)?.json.map((j) => (JSON.parse(j) as RecordEnvelope).key)).toEqual(["s4"]);
  });

  it("with ACK_COPIES=3 waits for two peers, or for every peer there is when fewer can hold a copy", async () => {
    const { copies, write } = ledger({ copies: 3 });
    copies.setAble(2);
    copies.openLink("p1");
    copies.openLink("p2");
    write(1);
    copies.next("p1", 10, 1_000_000);
    copies.next("p2", 10, 1_000_000);
    const answer = copies.wait();
    copies.acked("p1", 1);
    expect(await state(answer)).toBe("pending");
    copies.acked("p2", 1);
    expect(await state(answer)).toBe("resolved");

    write(1);
    copies.next("p1", 10, 1_000_000);
    const second = copies.wait();
    copies.setAble(1); // p2 stopped answering
    copies.acked("p1", 2);
    expect(await state(second)).toBe("resolved");
  });

  it("answers with its own copy when the last peer goes while it waits", async () => {
    const { copies, write } = ledger();
    copies.setAble(1);
    copies.openLink("p1");
    write(1);
    const answer = copies.wait();
    copies.setAble(0);
    expect(await state(answer)).toBe("resolved");
    expect(copies.status().counters.alone).toBe(1);
  });

  it("past ACK_TIMEOUT_MS answers anyway, counts it and says so in one log line", async () => {
    vi.useFakeTimers();
    const { copies, write, log } = ledger({ timeoutMs: 500 });
    copies.setAble(1);
    copies.openLink("p1");
    write(1);
    const first = copies.wait();
    write(1);
    const second = copies.wait();
    await vi.advanceTimersByTimeAsync(499);
    expect(await state(first)).toBe("pending");
    await vi.advanceTimersByTimeAsync(2);
    expect(await state(first)).toBe("resolved");
    expect(await state(second)).toBe("resolved");
    expect(copies.status().counters).toMatchObject({ timedOut: 2, copied: 0 });
    const lines = log.lines.filter((l) => l.msg.includes("no peer confirmed a copy in time"));
    expect(lines).toHaveLength(1);
    expect(lines[0]!.level).toBe("warn");
  });

  it("strict (ACK_STRICT) refuses past the timeout with an unavailable error", async () => {
    vi.useFakeTimers();
    const { copies, write } = ledger({ timeoutMs: 100, strict: true });
    copies.setAble(1);
    copies.openLink("p1");
    write(1);
    const answer = copies.wait();
    const settled = answer.catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(101);
    const error = await settled;
    expect(error).toBeInstanceOf(ClusterUnavailableError);
    expect((error as ClusterUnavailableError).reason).toBe("copies");
    expect(copies.status().counters.refused).toBe(1);
  });

  it("bounds its buffer: past the limit the oldest writes are given up, and their answers are not held", async () => {
    const { copies, write, log } = ledger({}, 4);
    copies.setAble(1);
    copies.openLink("p1");
    write(3);
    const early = copies.wait();
    write(2); // 5 > 4: the oldest 3 are given up
    expect(await state(early)).toBe("resolved");
    expect(copies.status()).toMatchObject({ buffered: 2, counters: { abandoned: 3, timedOut: 1 } });
    expect(log.lines.some((l) => l.msg.includes("gave up the oldest"))).toBe(true);
    expect(copies.next("p1", 10, 1_000_000)?.json.map((j) => (JSON.parse(j) as RecordEnvelope).key)).toEqual([
      "s4",
      "s5",
    ]);
  });

  it("splits what it sends by records and bytes", () => {
    const { copies, write } = ledger();
    copies.setAble(1);
    copies.openLink("p1");
    write(5);
    expect(copies.next("p1", 2, 1_000_000)?.upTo).toBe(2);
    const oneRecordBytes = JSON.stringify(record(3)).length;
    expect(copies.next("p1", 100, oneRecordBytes + 1)?.upTo).toBe(3);
    expect(copies.next("p1", 100, 1_000_000)?.upTo).toBe(5);
    expect(copies.next("p1", 100, 1_000_000)).toBeUndefined();
  });
});
