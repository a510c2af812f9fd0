/**
 * Which apps a person let in, and to what: one replicated row per user and client, written when
 * they allow an app on the consent page (or when a first-party app signs them in, so it is listed
 * too), read to skip the page next time, listed and revocable on /account ("Apps with access").
 */
import { z } from "zod";
import { indexTable, type Table, type TableIndex } from "#cluster";
import type { ClusterPort } from "#app/lib/context.server.ts";

const consentSchema = z.object({
  uid: z.string().max(64),
  clientId: z.string().max(128),
  scopes: z.array(z.string().max(64)).max(16),
  firstParty: z.boolean(),
  at: z.number().int(),
});
export type Consent = z.infer<typeof consentSchema>;

export class Consents {
  private readonly table: Table<Consent>;
  private readonly byUser: TableIndex;

  constructor(
    cluster: ClusterPort,
    private readonly now: () => number,
  ) {
    this.table = cluster.store.table("oidcConsents", { schema: consentSchema, strings: { uid: { keyOf: "users" } } });
    this.byUser = indexTable(this.table, (_key, row) => row.uid);
  }

  private static key(uid: string, clientId: string): string {
    return `${uid} ${clientId}`;
  }

  /** True when the person allowed this app every one of these scopes before (under any of their ids). */
  covers(uids: ReadonlySet<string>, clientId: string, scopes: Iterable<string>): boolean {
    for (const uid of uids) {
      const row = this.table.get(Consents.key(uid, clientId));
      if (row && [...scopes].every((scope) => row.scopes.includes(scope))) return true;
    }
    return false;
  }

  /** Remember what was allowed; written only when it adds something (true then), so silent sign-ins write nothing. */
  remember(uid: string, clientId: string, scopes: Iterable<string>, firstParty: boolean): boolean {
    const key = Consents.key(uid, clientId);
    const existing = this.table.get(key);
    const merged = [...new Set([...(existing?.scopes ?? []), ...scopes])].sort();
    if (existing && existing.firstParty === firstParty && merged.length === existing.scopes.length) return false;
    this.table.set(key, { uid, clientId, scopes: merged, firstParty, at: this.now() });
    return true;
  }

  list(uids: ReadonlySet<string>): Consent[] {
    const rows: Consent[] = [];
    for (const uid of uids) {
      for (const key of this.byUser.keys(uid)) {
        const row = this.table.get(key);
        if (row) rows.push(row);
      }
    }
    return rows.sort((a, b) => b.at - a.at);
  }

  /** Forget every consent of the person (erasure). */
  forgetAll(uids: ReadonlySet<string>): number {
    const rows = this.list(uids);
    for (const row of rows) this.table.delete(Consents.key(row.uid, row.clientId));
    return rows.length;
  }

  /** Forget the app's consent under every id of the person; true when there was one. */
  forget(uids: ReadonlySet<string>, clientId: string): boolean {
    let found = false;
    for (const uid of uids) {
      const key = Consents.key(uid, clientId);
      if (this.table.has(key)) {
        this.table.delete(key);
        found = true;
      }
    }
    return found;
  }
}
