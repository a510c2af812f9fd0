/**
 * The OpenID provider's state in the replicated tables, one table per oidc-provider model
 * (`oidcSession`, `oidcAuthorizationCode`, `oidcRefreshToken`, …): what its adapter reads and
 * writes, plus two tables of our own: the uses of single-use artefacts (`oidcUses`) and revoked
 * token families (`oidcRevokedGrants`: a grant and every token issued under it). The same tables
 * replicate by gossip or through Redis, so this file knows nothing of the transport.
 */
import { z } from "zod";
import { indexTable, type Table, type TableIndex } from "#cluster";
import type { ClusterPort } from "#app/lib/context.server.ts";

/** The models our configuration uses (dynamic registration, PAR, CIBA and client credentials are off). */
export const MODELS = [
  "Session",
  "Interaction",
  "Grant",
  "AuthorizationCode",
  "AccessToken",
  "RefreshToken",
  "DeviceCode",
  "ReplayDetection",
] as const;
export type Model = (typeof MODELS)[number];
/** the models whose rows carry a grantId: revoking a grant reaches them */
export const GRANTABLE: readonly Model[] = ["AuthorizationCode", "AccessToken", "RefreshToken", "DeviceCode"];

export type Payload = Record<string, unknown>;

const rowSchema = z.object({
  /** the provider's payload, as it gave it */
  p: z.record(z.string(), z.unknown()),
  /** when the row may be collected (ms since the epoch), 0 for never */
  e: z.number().int().nonnegative(),
  /** the node that first wrote it: in gossip mode it alone decides the row's single use */
  n: z.string().max(128),
  /** grantId: the token family */
  g: z.string().max(128).optional(),
  /** a second key to find the row by: a Session's uid, a DeviceCode's user code */
  i: z.string().max(128).optional(),
  /** Grant rows: the PwdlessGs session (sid) it was given in, and whose end ends it */
  s: z.string().max(64).optional(),
});
export type Row = z.infer<typeof rowSchema>;

const useSchema = z.object({ at: z.number().int(), e: z.number().int(), n: z.string().max(128) });
const revokedSchema = z.object({ at: z.number().int(), e: z.number().int(), reason: z.string().max(64) });

const DAY = 24 * 60 * 60 * 1000;
/** a row written on another node a moment ago may still be on its way: wait this long for it */
export const ARRIVAL_WAIT_MS = 2_000;
/** oidc-provider's ids (nanoid) and user codes: anything else is not worth waiting for */
const WELL_FORMED = /^[A-Za-z0-9_-]{8,64}$/;

export interface RowsOptions {
  now: () => number;
  /** how long a revoked family's row is kept: longer than any token of it can live */
  familyLifeMs: number;
  arrivalWaitMs?: number;
}

export class ProviderRows {
  private readonly tables = new Map<Model, Table<Row>>();
  private readonly byGrant = new Map<Model, TableIndex>();
  private readonly bySecond = new Map<Model, TableIndex>();
  private readonly grantsBySession: TableIndex;
  readonly uses: Table<z.infer<typeof useSchema>>;
  readonly revoked: Table<z.infer<typeof revokedSchema>>;
  private readonly waiting = new Map<string, Set<(row: Row) => void>>();

  constructor(
    private readonly cluster: ClusterPort,
    private readonly options: RowsOptions,
  ) {
    for (const model of MODELS) {
      const table = cluster.store.table<Row>(`oidc${model}`, { schema: rowSchema, strings: { n: "shared" } });
      this.tables.set(model, table);
      if (GRANTABLE.includes(model))
        this.byGrant.set(
          model,
          indexTable(table, (_id, row) => row.g ?? ""),
        );
      if (model === "Session" || model === "DeviceCode") {
        this.bySecond.set(
          model,
          indexTable(table, (_id, row) => row.i ?? ""),
        );
      }
      table.onChange(({ key, value }) => {
        if (value === undefined) return;
        const waiters = this.waiting.get(`${model}:${key}`);
        if (waiters) for (const wake of [...waiters]) wake(value);
      });
    }
    this.grantsBySession = indexTable(this.table("Grant"), (_id, row) => row.s ?? "");
    this.uses = cluster.store.table("oidcUses", { schema: useSchema, strings: { n: "shared" } });
    this.revoked = cluster.store.table("oidcRevokedGrants", { schema: revokedSchema });
  }

  table(model: Model): Table<Row> {
    return this.tables.get(model)!;
  }

  /** The row, or, when it is not here yet, the row as soon as it arrives (bounded). */
  async get(model: Model, id: string): Promise<Row | undefined> {
    const row = this.table(model).get(id);
    if (row || !WELL_FORMED.test(id)) return row;
    return this.arrival(model, id);
  }

  private arrival(model: Model, id: string): Promise<Row | undefined> {
    const key = `${model}:${id}`;
    return new Promise((resolve) => {
      let waiters = this.waiting.get(key);
      if (!waiters) this.waiting.set(key, (waiters = new Set()));
      const done = (row: Row | undefined) => {
        clearTimeout(timer);
        waiters.delete(wake);
        if (waiters.size === 0) this.waiting.delete(key);
        resolve(row);
      };
      const wake = (row: Row) => done(row);
      const timer = setTimeout(() => done(undefined), this.options.arrivalWaitMs ?? ARRIVAL_WAIT_MS);
      waiters.add(wake);
    });
  }

  /** Write a row; a re-save keeps who first wrote it (its single-use decider) and its session binding. */
  put(model: Model, id: string, payload: Payload, expiresInSeconds: number | undefined): void {
    const table = this.table(model);
    const existing = table.get(id);
    const second = model === "Session" ? payload.uid : model === "DeviceCode" ? payload.userCode : undefined;
    const row: Row = {
      // a copy: the provider keeps mutating its objects after saving them
      p: JSON.parse(JSON.stringify(payload)) as Payload,
      e: expiresInSeconds ? this.options.now() + expiresInSeconds * 1000 : 0,
      n: existing?.n ?? this.cluster.nodeId,
    };
    if (typeof payload.grantId === "string") row.g = payload.grantId;
    if (typeof second === "string") row.i = second;
    if (existing?.s) row.s = existing.s;
    table.set(id, row);
  }

  delete(model: Model, id: string): void {
    if (this.table(model).has(id)) this.table(model).delete(id);
  }

  /** Tie a grant to the PwdlessGs session it was given in: when that session ends, so do its tokens. */
  bindGrant(grantId: string, sid: string): void {
    const row = this.table("Grant").get(grantId);
    if (row && row.s !== sid) this.table("Grant").set(grantId, { ...row, s: sid });
  }

  grantsOfSession(sid: string): ReadonlySet<string> {
    return this.grantsBySession.keys(sid);
  }

  /** The `sid` claim the family's ID tokens carried (the provider's session id for that app), for a logout token. */
  sidClaimOf(grantId: string): string | undefined {
    for (const model of GRANTABLE) {
      for (const id of this.byGrant.get(model)!.keys(grantId)) {
        const sid = this.table(model).get(id)?.p.sid;
        if (typeof sid === "string") return sid;
      }
    }
    return undefined;
  }

  /** The row found by its second key (a Session's uid, a DeviceCode's user code). */
  async findBySecond(model: Model, value: string): Promise<[string, Row] | undefined> {
    for (const id of this.bySecond.get(model)?.keys(value) ?? []) {
      const row = this.table(model).get(id);
      if (row && row.i === value) return [id, row];
    }
    return undefined;
  }

  usedAt(model: Model, id: string): number | undefined {
    return this.uses.get(`${model}:${id}`)?.at;
  }

  /** Record a use (the decision was taken already: by this node as issuer, or by Redis). */
  markUsed(model: Model, id: string, row: Row): void {
    const key = `${model}:${id}`;
    if (!this.uses.has(key)) {
      this.uses.set(key, { at: this.options.now(), e: row.e || this.options.now() + DAY, n: this.cluster.nodeId });
    }
  }

  isRevoked(grantId: string | undefined): boolean {
    return grantId !== undefined && this.revoked.has(grantId);
  }

  /** Revoke a token family: one replicated row, and every token of it is refused on every node. */
  revokeFamily(grantId: string, reason: string): boolean {
    if (this.revoked.has(grantId)) return false;
    const now = this.options.now();
    this.revoked.set(grantId, { at: now, e: now + this.options.familyLifeMs, reason });
    return true;
  }

  /** Grant ids of every family in these tables for an account and a client (an app's access). */
  grantsOf(accountIds: ReadonlySet<string>, clientId: string): string[] {
    const found: string[] = [];
    for (const [id, row] of this.table("Grant").scan()) {
      if (row.p.clientId === clientId && accountIds.has(String(row.p.accountId)) && !this.revoked.has(id)) {
        found.push(id);
      }
    }
    return found;
  }

  /**
   * Erase a person (all their ids): every grant of theirs is revoked and deleted with its tokens,
   * their provider sessions and interactions deleted, on every node. Returns how many rows went.
   * A scan of the provider's tables: erasure is rare.
   */
  eraseAccount(ids: ReadonlySet<string>): number {
    let erased = 0;
    const of = (payload: Payload) => {
      const account = payload.accountId ?? (payload.session as { accountId?: unknown } | undefined)?.accountId;
      return typeof account === "string" && ids.has(account);
    };
    for (const [grantId, row] of [...this.table("Grant").scan()]) {
      if (!of(row.p)) continue;
      this.revokeFamily(grantId, "account-erased");
      this.table("Grant").delete(grantId);
      erased += 1;
    }
    for (const model of MODELS) {
      if (model === "Grant") continue;
      const table = this.table(model);
      for (const [id, row] of [...table.scan()]) {
        if (of(row.p)) {
          table.delete(id);
          erased += 1;
        }
      }
    }
    return erased;
  }

  /** A person's grants for "download my data": which app, what it may see, since when (never a token). */
  grantsFor(ids: ReadonlySet<string>): Array<{ clientId: string; scope: string; since: number; revoked: boolean }> {
    const found = [];
    for (const [grantId, row] of this.table("Grant").scan()) {
      if (!ids.has(String(row.p.accountId))) continue;
      found.push({
        clientId: String(row.p.clientId),
        scope: String((row.p.openid as { scope?: unknown } | undefined)?.scope ?? ""),
        since: Number(row.p.iat) * 1000,
        revoked: this.isRevoked(grantId),
      });
    }
    return found;
  }

  /**
   * Collect what can no longer be used: expired rows, the rows of revoked families, grants whose
   * PwdlessGs session has ended (the node that wrote a row deletes it; any node a day after its
   * expiry, as that node may be gone), uses and revocations past the life of what they guard.
   * Returns how many rows were deleted.
   */
  prune(sessionActive: (sid: string) => boolean = () => true): number {
    const now = this.options.now();
    let dropped = 0;
    for (const model of MODELS) {
      const table = this.table(model);
      for (const [id, row] of [...table.scan()]) {
        const dead =
          (row.e > 0 && row.e <= now) ||
          (GRANTABLE.includes(model) && this.isRevoked(row.g)) ||
          (model === "Grant" && (this.isRevoked(id) || (row.s !== undefined && !sessionActive(row.s))));
        const late = row.e > 0 && row.e + DAY <= now;
        if (dead && (row.n === this.cluster.nodeId || late)) {
          table.delete(id);
          dropped += 1;
        }
      }
    }
    for (const [key, use] of [...this.uses.scan()]) {
      if (use.e <= now && (use.n === this.cluster.nodeId || use.e + DAY <= now)) {
        this.uses.delete(key);
        dropped += 1;
      }
    }
    // a revocation names no node: any node drops it once every token it guards has expired
    for (const [key, revoked] of [...this.revoked.scan()]) {
      if (revoked.e <= now) {
        this.revoked.delete(key);
        dropped += 1;
      }
    }
    return dropped;
  }
}
