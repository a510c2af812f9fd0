/**
 * One use, cluster-wide, of an authorization code, a device code and a refresh token. Gossip
 * mode: the node that wrote the artefact decides (a check and a write with no await between
 * them), and the others ask it over the cluster, as for sign-in links; Redis mode: Redis decides
 * (a claim only its first caller gets), so the answer does not depend on any one node.
 */
import { z } from "zod";
import type { ClusterPort, Logger } from "#app/lib/context.server.ts";
import { MODELS, type Model, type ProviderRows, type Row } from "./rows.server";

export const CONSUME_METHOD = "oidc.consume";
const ASK_ISSUER_TIMEOUT_MS = 3_000;
const HOUR = 60 * 60 * 1000;

const requestSchema = z.object({ model: z.enum(MODELS), id: z.string().min(1).max(128) });
const answerSchema = z.object({ outcome: z.enum(["ok", "used", "unknown"]) });

/** ok: this caller has the one use; used: someone had it; unknown: no such artefact; unavailable: nobody could decide. */
export type UseOutcome = "ok" | "used" | "unknown" | "unavailable";

export class SingleUse {
  constructor(
    private readonly cluster: ClusterPort,
    private readonly rows: ProviderRows,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {
    cluster.handle(CONSUME_METHOD, async (body, from) => {
      const parsed = requestSchema.safeParse(body);
      if (!parsed.success) throw new Error("malformed oidc.consume request");
      const { model, id } = parsed.data;
      const outcome = this.decide(model, id, from);
      // the asking node answers its client on this decision: the use must survive this node's crash
      if (outcome === "ok") await cluster.durable();
      return { outcome };
    });
  }

  /** Take the one use of a row this node has (the provider found it a moment ago). */
  async consume(model: Model, id: string): Promise<UseOutcome> {
    const row = this.rows.table(model).get(id);
    if (!row) return "unknown";
    const atomics = this.cluster.atomics;
    if (atomics?.scope === "cluster") {
      if (this.rows.usedAt(model, id) !== undefined) return "used";
      try {
        const ttl = Math.max(row.e - this.now(), 0) + HOUR;
        if (!(await atomics.claimOnce("oidc", `${model}:${id}`, ttl))) return "used";
      } catch (error) {
        this.log.warn("could not decide a single use in Redis", { model, reason: (error as Error).message });
        return "unavailable";
      }
      this.rows.markUsed(model, id, row);
      return "ok";
    }
    if (row.n === this.cluster.nodeId) return this.decide(model, id, this.cluster.nodeId);
    return this.askIssuer(row, model, id);
  }

  /** The decision, on the issuing node only: no await between the check and the write. */
  private decide(model: Model, id: string, askedBy: string): "ok" | "used" | "unknown" {
    const row = this.rows.table(model).get(id);
    if (!row) return "unknown";
    if (row.n !== this.cluster.nodeId) {
      this.log.warn("asked to decide the use of a row another node issued", { model, askedBy });
      return "unknown";
    }
    if (this.rows.usedAt(model, id) !== undefined) return "used";
    this.rows.markUsed(model, id, row);
    return "ok";
  }

  private async askIssuer(row: Row, model: Model, id: string): Promise<UseOutcome> {
    try {
      const answer = await this.cluster.request(row.n, CONSUME_METHOD, { model, id }, ASK_ISSUER_TIMEOUT_MS);
      return answerSchema.parse(answer).outcome;
    } catch (error) {
      this.log.warn("could not reach the node that issued an OpenID artefact", {
        model,
        issuer: row.n,
        reason: error instanceof Error ? error.message : String(error),
      });
      return "unavailable";
    }
  }
}
