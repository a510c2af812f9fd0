// The checks compiled from a table's zod schema (app/lib/table-schema.server.ts) and the cluster's
// check of rows in their binary form: each says yes only when zod's parse would give the value
// back unchanged, and says yes to the rows the app really writes.
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ClusterStore, type Schema } from "#cluster";
import { ByteWriter, cursor, Dictionary, encodeValue } from "../../cluster/codec";
import { compileSpec } from "../../cluster/value-check";
import { userSchema } from "#app/lib/accounts/users.server.ts";
import { sessionSchema } from "#app/lib/session/sessions.server.ts";
import { tableSchema } from "#app/lib/table-schema.server.ts";

/** A deterministic pseudo-random sequence, so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** What zod says: accepted as it is (parse gives an equal value back)? */
function zodKeeps(schema: z.ZodTypeAny, value: unknown): boolean {
  const result = schema.safeParse(value);
  return result.success && JSON.stringify(result.data) === JSON.stringify(value);
}

/** The binary check of a value, encoded as the store holds it, under `key`. */
function bytesCheck(schema: Schema<unknown>, value: unknown, key: string): boolean {
  const spec = schema.binarySpec?.();
  if (!spec) throw new Error("no binary spec");
  const dict = new Dictionary();
  const keyBytes = new ByteWriter(64);
  keyBytes.string(key);
  const w = new ByteWriter(256);
  encodeValue(w, value, dict, key, new Set(["createdOn", "method", "userAgent", "provider"]));
  const bytes = Buffer.from(w.take());
  cursor.pos = 0;
  const ok = compileSpec(spec)(bytes, dict, Buffer.from(keyBytes.take()), 0);
  expect(cursor.pos, "the check leaves the cursor past the value").toBe(bytes.length);
  return ok;
}

const now = 1_700_000_000_000;
const realUser = () => {
  const id = randomUUID();
  return {
    id,
    email: `user${id.slice(0, 6)}@example.com`,
    createdAt: now,
    createdOn: "12D3KooWQ8RHzJ7w5w2x8nq1o9a4bU3fLZ6dS7pXc2mV9kTeYhGq",
    identities: [{ provider: "email", subject: `user${id.slice(0, 6)}@example.com`, linkedAt: now }],
  };
};
const realSession = () => ({
  sid: randomUUID(),
  uid: randomUUID(),
  createdAt: now,
  lastUsedAt: now,
  expiresAt: now + 30 * 86_400_000,
  createdOn: "12D3KooWQ8RHzJ7w5w2x8nq1o9a4bU3fLZ6dS7pXc2mV9kTeYhGq",
  method: "email",
  userAgent: "Mozilla/5.0",
  gen: 0,
  genAt: now,
});

/** A valid value, then one thing changed about it at random. */
function mutate(random: () => number, value: Record<string, unknown>): Record<string, unknown> {
  const out = structuredClone(value);
  const fields = Object.keys(out);
  const field = fields[Math.floor(random() * fields.length)]!;
  const pick = random();
  if (pick < 0.15) delete out[field];
  else if (pick < 0.3) out.extra = "unknown field";
  else if (pick < 0.45) out[field] = null;
  else if (pick < 0.6) out[field] = 12.5;
  else if (pick < 0.7) out[field] = -3;
  else if (pick < 0.8) out[field] = "x".repeat(Math.floor(random() * 600));
  else if (pick < 0.9) out[field] = String(out[field]).toUpperCase();
  else out[field] = [];
  return out;
}

describe("a table's schema, compiled", () => {
  const cases: Array<[string, z.ZodTypeAny, () => Record<string, unknown>, (v: Record<string, unknown>) => string]> = [
    ["users", userSchema, realUser, (v) => String(v.id)],
    ["sessions", sessionSchema, realSession, (v) => String(v.sid)],
    [
      "email claims",
      z.object({ uid: z.string().regex(/^[0-9a-f-]{36}$/) }),
      () => ({ uid: randomUUID() }),
      () => "a@example.com",
    ],
  ];

  for (const [name, zod, real, keyOf] of cases) {
    it(`passes the ${name} the app writes, and nothing zod would refuse or change`, () => {
      const schema = tableSchema(zod);
      expect(schema.check).toBeDefined();
      expect(schema.binarySpec).toBeDefined();
      const random = prng(name.length * 7919);
      for (let i = 0; i < 200; i++) {
        const value = real();
        expect(schema.check!(value), JSON.stringify(value)).toBe(true);
        expect(bytesCheck(schema, value, keyOf(value))).toBe(true);
      }
      let refused = 0;
      for (let i = 0; i < 3_000; i++) {
        const value = mutate(random, real());
        const keeps = zodKeeps(zod, value);
        // a yes is only ever given where zod keeps the value (a no merely costs the slow path)
        if (schema.check!(value)) expect(keeps, JSON.stringify(value)).toBe(true);
        if (bytesCheck(schema, value, keyOf(real()))) expect(keeps, JSON.stringify(value)).toBe(true);
        if (!keeps) refused += 1;
      }
      expect(refused).toBeGreaterThan(1_000);
    });
  }

  it("leaves schemas it does not compile to parse alone", () => {
    const schema = tableSchema(z.object({ when: z.string().datetime().or(z.number()) }));
    expect(schema.check).toBeUndefined();
    expect(schema.binarySpec).toBeUndefined();
    expect(schema.parse({ when: 5 })).toEqual({ when: 5 });
  });

  it("makes a catch-up keep a good row as it came and refuse a bad one, checked in its binary form", async () => {
    const { applyFrames, digestRequest, syncFrames } = await import("../../cluster/sync");
    const writer = new ClusterStore({ nodeId: "w", clock: () => now });
    const good = realSession();
    const bad = { ...realSession(), uid: "not a uuid" };
    writer.table("sessions").set(good.sid, good);
    writer.table("sessions").set(bad.sid, bad);
    const joiner = new ClusterStore({ nodeId: "j", clock: () => now });
    let parsed = 0;
    const schema = tableSchema(sessionSchema);
    const sessions = joiner.table("sessions", { schema: { ...schema, parse: (v) => (parsed++, schema.parse(v)) } });
    const result = { received: 0, applied: 0, rejected: 0, differingBuckets: 0 };
    async function* frames() {
      for await (const f of syncFrames(writer, digestRequest(joiner), { log: { info() {}, warn() {}, error() {} } })) {
        yield Buffer.from(f);
      }
    }
    await applyFrames(frames(), joiner, result);
    expect(result).toMatchObject({ applied: 1, rejected: 1 });
    expect(sessions.get(good.sid)).toEqual(good);
    expect(sessions.has(bad.sid)).toBe(false);
    // the good row passed in its binary form; only the bad one was built and given to zod
    expect(parsed).toBe(1);
  });
});
