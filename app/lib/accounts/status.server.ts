/** Disabled accounts: a replicated row per disabled user, apart from the user row so no later write to it can undo a disable. */
import { z } from "zod";
import type { Table } from "#cluster";
import type { ClusterPort } from "#app/lib/context.server.ts";

const disabledSchema = z.object({
  at: z.number().int(),
  /** who disabled it: "admin-token" or an administrator's user id */
  by: z.string().max(64),
  reason: z.string().max(200),
});
export type Disabled = z.infer<typeof disabledSchema>;

export class AccountStatus {
  private readonly table: Table<Disabled>;

  constructor(
    cluster: ClusterPort,
    private readonly now: () => number,
  ) {
    this.table = cluster.store.table("disabledUsers", { schema: disabledSchema });
  }

  isDisabled(uid: string): boolean {
    return this.table.has(uid);
  }

  get(uid: string): Disabled | undefined {
    return this.table.get(uid);
  }

  disable(uid: string, by: string, reason: string): void {
    if (!this.table.has(uid)) this.table.set(uid, { at: this.now(), by, reason: reason.slice(0, 200) });
  }

  /** Enable again (and forget, on erasure). */
  enable(uid: string): void {
    this.table.delete(uid);
  }

  /** The table, for those who report its changes (webhooks). */
  get rows(): Table<Disabled> {
    return this.table;
  }
}
