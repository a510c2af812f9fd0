import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { useLoaderData, useRevalidator } from "@remix-run/react";
import { useEffect } from "react";
import type { ClusterStatus } from "#cluster";
import { requireClusterViewer } from "#app/lib/ops/cluster-view.server.ts";
import { pageTitle, rootOf, useT } from "#app/lib/i18n/intl.ts";

export const meta: MetaFunction<typeof loader> = ({ matches, data }) => [
  { title: pageTitle(rootOf(matches), "cluster.title", { name: data?.status.clusterName ?? "" }) },
];

export async function loader({ request, context }: LoaderFunctionArgs) {
  await requireClusterViewer(request, context, "page");
  return json({ status: context.app.cluster.status() as ClusterStatus }, { headers: { "Cache-Control": "no-store" } });
}

/** up / down (and why) as the liveness view has it; Redis mode's members have no heartbeat of ours */
function peerState(p: ClusterStatus["peers"][number], t: ReturnType<typeof useT>): string {
  if (!p.connected) return t("cluster.state.disconnected");
  if (p.up === false) return t("cluster.state.silent", { seconds: ((p.silentMs ?? 0) / 1000).toFixed(1) });
  return t("cluster.state.up");
}

export default function Cluster() {
  const t = useT();
  const { status } = useLoaderData<typeof loader>();
  const revalidator = useRevalidator();
  useEffect(() => {
    const timer = setInterval(() => revalidator.state === "idle" && revalidator.revalidate(), 2000);
    return () => clearInterval(timer);
  }, [revalidator]);
  const rejected = Object.entries(status.counters.rejected)
    .map(([reason, n]) => `${reason}: ${n}`)
    .join(", ");
  const redis = status.redis;
  return (
    <main className="wide">
      <div className="card">
        <h1>{t("cluster.title", { name: status.clusterName })}</h1>
        <table className="facts">
          <tbody>
            <tr>
              <th scope="row">{t("cluster.thisNode")}</th>
              <td className="mono">{status.nodeId}</td>
            </tr>
            <tr>
              <th scope="row">{t("cluster.mode")}</th>
              <td data-testid="cluster-mode">
                {redis
                  ? t("cluster.mode.redis", {
                      connection: redis.connection,
                      latency: redis.latencyMs ?? "?",
                      url: redis.url,
                      prefix: redis.keyPrefix,
                      reconnects: redis.reconnects,
                      unacked: redis.unacknowledged,
                    })
                  : t("cluster.mode.gossip")}
              </td>
            </tr>
            {status.redis ? (
              <tr>
                <th>Redis topology</th>
                <td data-testid="redis-topology">
                  {status.redis.topology.kind}
                  {status.redis.topology.sentinelName ? ` "${status.redis.topology.sentinelName}"` : ""}:{" "}
                  {status.redis.topology.primaries
                    .map(
                      (p) =>
                        `primary ${p.address}${
                          p.replicas.length
                            ? ` (replicas ${p.replicas.map((r) => `${r.address} ${r.state}${r.lagSeconds === null ? "" : `, lag ${r.lagSeconds} s`}`).join("; ")})`
                            : " (no replica)"
                        }`,
                    )
                    .join(" · ")}
                  {` · writes wait for ${status.redis.waitReplicas.effective} replica(s) (REDIS_WAIT_REPLICAS=${status.redis.waitReplicas.setting}, ${status.redis.waitReplicas.shortfalls} fell short)`}
                  {` · re-seeds ${status.redis.reseeds.count}${status.redis.reseeds.running ? " (one running)" : ""}`}
                </td>
              </tr>
            ) : null}
            <tr>
              <th scope="row">{t("cluster.ready")}</th>
              <td data-testid="cluster-ready">
                {status.ready && status.readyReason ? t(`cluster.ready.${status.readyReason}`) : t("cluster.ready.no")}
              </td>
            </tr>
            <tr>
              <th scope="row">{t("cluster.listening")}</th>
              <td className="mono">{status.addresses.join(" ")}</td>
            </tr>
            <tr>
              <th scope="row">{t("cluster.mesh")}</th>
              <td>{t("cluster.meshPeers", { count: status.meshSize })}</td>
            </tr>
            <tr>
              <th scope="row">{t("cluster.lastCatchUp")}</th>
              <td>{status.lastCatchUpAt ? new Date(status.lastCatchUpAt).toISOString() : t("cluster.never")}</td>
            </tr>
            <tr>
              <th scope="row">{t("cluster.messages")}</th>
              <td>
                {t("cluster.messagesLine", {
                  in: status.counters.messagesIn,
                  out: status.counters.messagesOut,
                  rejected: rejected || "0",
                })}
              </td>
            </tr>
            <tr>
              <th scope="row">{t("cluster.catchUps")}</th>
              <td>
                {t("cluster.catchUpsLine", {
                  count: status.counters.catchUps,
                  records: status.counters.recordsPulled,
                  failed: status.counters.catchUpFailures,
                })}
              </td>
            </tr>
            {status.acks && (
              <tr>
                <th scope="row">{t("cluster.acks")}</th>
                <td data-testid="cluster-acks">
                  {status.acks.copies === 1
                    ? t("cluster.acks.one")
                    : t("cluster.acks.line", {
                        copies: status.acks.copies,
                        able: status.acks.able,
                        timeoutMs: status.acks.timeoutMs,
                        strict: status.acks.strict ? "yes" : "no",
                        copied: status.acks.counters.copied,
                        alone: status.acks.counters.alone,
                        timedOut: status.acks.counters.timedOut,
                        refused: status.acks.counters.refused,
                      })}
                  {status.acks.waitMs.samples > 0 &&
                    ` · ${t("cluster.acks.waited", { p50: status.acks.waitMs.p50 ?? 0, p99: status.acks.waitMs.p99 ?? 0 })}`}
                </td>
              </tr>
            )}
            {status.inbound && (
              <tr>
                <th scope="row">{t("cluster.port")}</th>
                <td>
                  {t("cluster.port.line", {
                    member: status.inbound.admitted.member,
                    unknown: status.inbound.admitted.unknown,
                    refused:
                      Object.entries(status.inboundRefused)
                        .filter(([, n]) => n > 0)
                        .map(([reason, n]) => `${reason}: ${n}`)
                        .join(", ") || "0",
                  })}
                </td>
              </tr>
            )}
            <tr>
              <th scope="row">{t("cluster.lag")}</th>
              <td>
                {status.replicationLagMs.samples
                  ? t("cluster.lagLine", {
                      p50: status.replicationLagMs.p50 ?? 0,
                      max: status.replicationLagMs.max ?? 0,
                      samples: status.replicationLagMs.samples,
                    })
                  : t("cluster.noLag")}
              </td>
            </tr>
          </tbody>
        </table>
      </div>
      <div className="card">
        <h2 id="cluster-peers">{t("cluster.peers")}</h2>
        {/* the peers' table (with its state column) overflows a phone's width: the scrolled region
            takes keyboard focus, so it can be scrolled without a pointer */}
        <div className="scroll" tabIndex={0} role="region" aria-labelledby="cluster-peers">
          <table>
            <thead>
              <tr>
                <th scope="col">{t("cluster.peer")}</th>
                <th scope="col">{t("cluster.state")}</th>
                <th scope="col">{t("cluster.address")}</th>
                <th scope="col">{t("cluster.ping")}</th>
                <th scope="col">{t("cluster.http")}</th>
              </tr>
            </thead>
            <tbody>
              {status.peers.length === 0 && (
                <tr>
                  <td colSpan={5} className="muted">
                    {t("cluster.noPeers")}
                  </td>
                </tr>
              )}
              {status.peers.map((p) => (
                <tr key={p.id} data-testid="peer-row">
                  <td className="mono">{p.id.slice(-12)}</td>
                  <td data-testid="peer-state">{peerState(p, t)}</td>
                  <td className="mono">{p.addresses[0] ?? "—"}</td>
                  <td>{p.pingMs === null ? "—" : `${p.pingMs} ms`}</td>
                  <td>{p.meta.httpUrl ? <a href={`${p.meta.httpUrl}/cluster`}>{p.meta.httpUrl}</a> : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
      <div className="card">
        <h2>{t("cluster.tables")}</h2>
        <table>
          <thead>
            <tr>
              <th scope="col">{t("cluster.table")}</th>
              <th scope="col">{t("cluster.rows")}</th>
            </tr>
          </thead>
          <tbody>
            {Object.entries(status.tables).map(([name, size]) => (
              <tr key={name}>
                <td className="mono">{name}</td>
                <td>{t("cluster.rowCount", { count: size })}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </main>
  );
}
