/** Passkey credentials (id, public key, counter, transports) of each user, in a replicated table like users. */
import { z } from "zod";
import { indexTable, type Table, type TableIndex } from "#cluster";
import type { ClusterPort } from "#app/lib/context.server.ts";

export const passkeySchema = z.object({
  uid: z.string().uuid(),
  name: z.string().min(1).max(64),
  /** COSE public key, base64url */
  publicKey: z.string().min(16).max(2048),
  counter: z.number().int().nonnegative(),
  transports: z.array(z.string().max(32)).max(8),
  createdAt: z.number().int(),
  createdOn: z.string().max(128),
  lastUsedAt: z.number().int().nullable(),
});
export type Passkey = z.infer<typeof passkeySchema>;

/** Keyed by the credential id (base64url), which is what an authenticator answers with. */
export class PasskeyStore {
  private readonly table: Table<Passkey>;
  private readonly byUser: TableIndex;

  constructor(
    private readonly cluster: ClusterPort,
    private readonly now: () => number,
  ) {
    this.table = cluster.store.table("passkeys", { schema: passkeySchema });
    this.byUser = indexTable(this.table, "uid");
  }

  get(id: string): Passkey | undefined {
    return this.table.get(id);
  }

  add(id: string, passkey: Omit<Passkey, "createdAt" | "createdOn" | "lastUsedAt">): Passkey {
    const row: Passkey = { ...passkey, createdAt: this.now(), createdOn: this.cluster.nodeId, lastUsedAt: null };
    this.table.set(id, row);
    return row;
  }

  used(id: string, row: Passkey, counter: number): void {
    this.table.set(id, { ...row, counter: Math.max(counter, row.counter), lastUsedAt: this.now() });
  }

  remove(id: string): void {
    this.table.delete(id);
  }

  /** Every passkey of any of these user ids (a user's own and ids merged into it), newest first. */
  listOf(uids: Set<string>): { id: string; passkey: Passkey }[] {
    const rows: { id: string; passkey: Passkey }[] = [];
    for (const uid of uids) {
      for (const id of this.byUser.keys(uid)) {
        const passkey = this.table.get(id);
        if (passkey) rows.push({ id, passkey });
      }
    }
    return rows.sort((a, b) => b.passkey.createdAt - a.passkey.createdAt);
  }
}
