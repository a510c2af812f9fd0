import { describe, expect, it } from "vitest";
import { ClusterStore, type RecordEnvelope } from "../../cluster/index";
import { SessionStore } from "#app/lib/session/sessions.server.ts";
import { UserStore } from "#app/lib/accounts/users.server.ts";
import { fakeClusterPort } from "#tests/support/fake-cluster.ts";

function node(id: string, now: () => number) {
  const store = new ClusterStore({ nodeId: id, clock: now });
  store.table("emails", { merge: "first-writer-wins" });
  const out: RecordEnvelope[] = [];
  store.onLocalWrite((r) => out.push(r));
  const port = fakeClusterPort(store);
  return { store, out, users: new UserStore(port, now), sessions: new SessionStore(port, 30, now) };
}

describe("one account per email across nodes", () => {
  it("merges a sign-up made on two nodes at once into one user, whatever the order, and keeps both sessions", () => {
    for (const order of ["a-first", "b-first"]) {
      let t = 1_700_000_000_000;
      const now = () => t;
      const a = node("node-a", now);
      const b = node("node-b", now);
      const onA = a.users.findOrCreateByEmail("x@example.com", { provider: "email", subject: "x@example.com" });
      t += 5;
      const onB = b.users.findOrCreateByEmail("x@example.com", { provider: "dev", subject: "sub-1" });
      expect(onA.id).not.toBe(onB.id);
      const sessionA = a.sessions.createSession(onA.id, { method: "email", userAgent: "" });
      const sessionB = b.sessions.createSession(onB.id, { method: "dev", userAgent: "" });

      const deliver = (from: typeof a, to: typeof a) => from.out.splice(0).forEach((r) => to.store.applyRemote(r));
      if (order === "a-first") {
        deliver(a, b);
        deliver(b, a);
      } else {
        deliver(b, a);
        deliver(a, b);
      }
      for (const n of [a, b]) {
        expect(n.users.getUser(onA.id)!.id).toBe(onA.id); // the earlier claim wins
        expect(n.users.getUser(onB.id)!.id).toBe(onA.id); // the later one is remapped, not lost
        expect(n.users.findByEmail("x@example.com")!.id).toBe(onA.id);
        expect(n.sessions.findActive(sessionA.sid)).toBeDefined();
        expect(n.sessions.findActive(sessionB.sid)).toBeDefined();
        expect([...n.users.idsOf(n.users.getUser(onB.id)!)].sort()).toEqual([onA.id, onB.id].sort());
      }
    }
  });

  it("keeps a revocation even when a later 'last used' update of the session arrives", () => {
    let t = 1_700_000_000_000;
    const now = () => t;
    const a = node("node-a", now);
    const b = node("node-b", now);
    const user = a.users.findOrCreateByEmail("y@example.com");
    const session = a.sessions.createSession(user.id, { method: "email", userAgent: "" });
    a.out.splice(0).forEach((r) => b.store.applyRemote(r));
    b.sessions.revoke(session.sid, "signed-out");
    t += 2 * 60 * 60 * 1000;
    a.sessions.touch(session); // a later write to the row on another node
    b.out.splice(0).forEach((r) => a.store.applyRemote(r));
    a.out.splice(0).forEach((r) => b.store.applyRemote(r));
    expect(a.sessions.findActive(session.sid)).toBeUndefined();
    expect(b.sessions.findActive(session.sid)).toBeUndefined();
  });
});
