import type { LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { json } from "@remix-run/node";
import { useLoaderData, useRevalidator } from "@remix-run/react";
import { useEffect } from "react";
import type { ClusterStatus } from "#cluster";
import { requireClusterViewer } from "#app/lib/ops/cluster-view.server.ts";

export const meta: MetaFunction = () => [{ title: "Cluster · PwdlessGs" }];

export async function loader({ request, context }: LoaderFunctionArgs) {
  await requireClusterViewer(request, context, "page");
  return json({ status: context.app.cluster.status() as ClusterStatus }, { headers: { "Cache-Control": "no-store" } });
}

export default function Cluster() {
  const { status } = useLoaderData<typeof loader>();
  const revalidator = useRevalidator();
  useEffect(() => {
    const timer = setInterval(() => revalidator.state === "idle" && revalidator.revalidate(), 2000);
    return () => clearInterval(timer);
  }, [revalidator]);
  const rejected = Object.entries(status.counters.rejected)
    .map(([reason, n]) => `${reason}: ${n}`)
    .join(", ");
  return (
    <main>
      <div className="card">
        <h1>Cluster {status.clusterName}</h1>
        <table>
          <tbody>
            <tr>
              <th>This node</th>
              <td className="mono">{status.nodeId}</td>
            </tr>
            <tr>
              <th>Mode</th>
              <td data-testid="cluster-mode">
                {status.redis
                  ? `Redis: ${status.redis.connection}, latency ${status.redis.latencyMs ?? "?"} ms, ${status.redis.url} (keys ${status.redis.keyPrefix}*), ${status.redis.reconnects} reconnect(s), ${status.redis.unacknowledged} unacknowledged write(s)`
                  : "gossip (libp2p mesh)"}
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
              <th>Ready</th>
              <td>{status.ready ? "yes (caught up with a peer)" : "no (alone, or not caught up yet)"}</td>
            </tr>
            <tr>
              <th>Listening on</th>
              <td className="mono">{status.addresses.join(" ")}</td>
            </tr>
            <tr>
              <th>Gossip mesh</th>
              <td>{status.meshSize} peer(s)</td>
            </tr>
            <tr>
              <th>Last catch-up</th>
              <td>{status.lastCatchUpAt ? new Date(status.lastCatchUpAt).toISOString() : "never"}</td>
            </tr>
            <tr>
              <th>Messages</th>
              <td>
                in {status.counters.messagesIn} · out {status.counters.messagesOut} · rejected {rejected || "0"}
              </td>
            </tr>
            <tr>
              <th>Catch-ups</th>
              <td>
                {status.counters.catchUps} ({status.counters.recordsPulled} records pulled,{" "}
                {status.counters.catchUpFailures} failed)
              </td>
            </tr>
            <tr>
              <th>Replication lag</th>
              <td>
                {status.replicationLagMs.samples
                  ? `p50 ${status.replicationLagMs.p50} ms · max ${status.replicationLagMs.max} ms (last minute, ${status.replicationLagMs.samples} records)`
                  : "no remote writes in the last minute"}
              </td>
            </tr>
          </tbody>
        </table>
      </div>
      <div className="card">
        <h2>Peers</h2>
        <table>
          <thead>
            <tr>
              <th>Peer</th>
              <th>Address</th>
              <th>Ping</th>
              <th>HTTP</th>
            </tr>
          </thead>
          <tbody>
            {status.peers.length === 0 && (
              <tr>
                <td colSpan={4} className="muted">
                  No peers yet. Start another node (e.g. <code>PORT=3001 npm start</code>) or see the README, "Run a
                  cluster".
                </td>
              </tr>
            )}
            {status.peers.map((p) => (
              <tr key={p.id} data-testid="peer-row">
                <td className="mono">
                  {p.id.slice(-12)} {p.connected ? "" : "(disconnected)"}
                </td>
                <td className="mono">{p.addresses[0] ?? "—"}</td>
                <td>{p.pingMs === null ? "—" : `${p.pingMs} ms`}</td>
                <td>{p.meta.httpUrl ? <a href={`${p.meta.httpUrl}/cluster`}>{p.meta.httpUrl}</a> : "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div className="card">
        <h2>Tables</h2>
        <table>
          <tbody>
            {Object.entries(status.tables).map(([name, size]) => (
              <tr key={name}>
                <th>{name}</th>
                <td>{size} rows</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </main>
  );
}
