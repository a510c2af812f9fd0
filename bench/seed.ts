/**
 * A big node for benches, without a million sign-ins through HTTP: users, their address claims and
 * one session each, shaped as an email sign-in writes them (valid for the app's schemas), written
 * straight into a node's tables file with the product's own writer (`writeTablesFile`); the real
 * server is then started on that DATA_DIR. Used by bench:durable and bench:admin.
 */
import { randomUUID } from "node:crypto";
import { writeTablesFile, type RecordEnvelope } from "#cluster";

const DAY = 24 * 3600_000;
/** the node id the seeded rows say they were written on */
export const SEED_WRITER = "12D3KooWBenchSeedWriter";

/** the address of seeded user i */
export const seededEmail = (i: number) => `user${i}@example.com`;

/** N users (identities `{provider, subject, linkedAt}`), their email claims and one session each, in slices. */
export function* seedUsers(users: number, now: number): Generator<RecordEnvelope[]> {
  const n = SEED_WRITER;
  const slice = 20_000;
  for (let start = 0; start < users; start += slice) {
    const records: RecordEnvelope[] = [];
    for (let i = start; i < Math.min(users, start + slice); i++) {
      const uid = randomUUID();
      const sid = randomUUID();
      const email = seededEmail(i);
      const t = now - DAY + i;
      records.push(
        {
          table: "users",
          key: uid,
          value: {
            id: uid,
            email,
            createdAt: t,
            createdOn: n,
            identities: [{ provider: "email", subject: email, linkedAt: t }],
          },
          stamp: { t, c: 0, n },
        },
        { table: "emails", key: email, value: { uid }, stamp: { t, c: 1, n } },
        {
          table: "sessions",
          key: sid,
          value: {
            sid,
            uid,
            createdAt: t,
            lastUsedAt: t,
            expiresAt: t + 30 * DAY,
            createdOn: n,
            method: "email",
            userAgent: "Mozilla/5.0 (X11; Linux x86_64) bench",
            gen: 0,
            genAt: t,
          },
          stamp: { t, c: 2, n },
        },
      );
    }
    yield records;
  }
}

/** Write N seeded users into `file` (a node's DATA_DIR/tables.db) for CLUSTER_NAME; returns the rows written. */
export function seedTablesFile(file: string, clusterName: string, users: number, now = Date.now()): number {
  return writeTablesFile(file, clusterName, seedUsers(users, now));
}
