/**
 * Look inside a running node from a terminal.
 *   npm run cluster -- status [--url http://localhost:4001]
 *   npm run cluster -- table users [--url …]
 *   npm run cluster -- backup <file> [--data-dir DIR]   (a consistent copy of a node's tables files)
 *   npm run cluster -- accept-file [--data-dir DIR]     (vouch for a file older than the tombstone horizon)
 * Production nodes need an admin's session: pass --cookie "pwdless_session=…".
 */
type Status = {
  mode?: "gossip" | "redis";
  redis?: {
    url: string;
    keyPrefix: string;
    connection: string;
    latencyMs: number | null;
    reconnects: number;
    unacknowledged: number;
    topology?: {
      kind: string;
      sentinelName?: string;
      primaries: { address: string; replicas: { address: string; state: string; lagSeconds: number | null }[] }[];
    };
    waitReplicas?: { setting: string | number; effective: number; shortfalls: number };
  };
  nodeId: string;
  clusterName: string;
  ready: boolean;
  addresses: string[];
  peers: {
    id: string;
    connected: boolean;
    up?: boolean;
    silentMs?: number | null;
    addresses: string[];
    pingMs: number | null;
    meta: Record<string, string>;
  }[];
  meshSize: number;
  tables: Record<string, number>;
  lastCatchUpAt: number | null;
  counters: {
    messagesIn: number;
    messagesOut: number;
    rejected: Record<string, number>;
    catchUps: number;
    recordsPulled: number;
  };
  replicationLagMs: { samples: number; p50: number | null; max: number | null };
};

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function table(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return "(no rows)";
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cells = rows.map((r) => columns.map((c) => String(r[c] ?? "")));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(columns), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n");
}

async function get(url: string, cookie: string | undefined): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { headers: cookie ? { Cookie: cookie } : {} });
  } catch {
    throw new Error(`cannot reach ${url}: is a node running there? (npm start, or PORT=… npm start)`);
  }
  const body = (await response.json().catch(() => ({}))) as { message?: string };
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${body.message ?? ""}`);
  return body;
}

async function main(args: string[]) {
  const base = (option(args, "--url") ?? `http://localhost:${process.env.PORT ?? 3000}`).replace(/\/$/, "");
  const cookie = option(args, "--cookie");
  const [command, name] = args.filter((a, i) => !a.startsWith("--") && !args[i - 1]?.startsWith("--"));
  if (command === "status") {
    const s = (await get(`${base}/cluster.json`, cookie)) as Status;
    const rejected = Object.values(s.counters.rejected).reduce((a, b) => a + b, 0);
    console.log(`node       ${s.nodeId}  (cluster ${s.clusterName}, ${s.ready ? "ready" : "not ready"})`);
    console.log(`mode       ${s.mode ?? "gossip"}`);
    if (s.redis) {
      const r = s.redis;
      console.log(
        `redis      ${r.connection}, latency ${r.latencyMs === null ? "?" : r.latencyMs} ms; ${r.url} (keys ${r.keyPrefix}*); reconnects ${r.reconnects}, unacknowledged writes ${r.unacknowledged}`,
      );
      if (r.topology) {
        const primaries = r.topology.primaries
          .map(
            (p) =>
              `${p.address} [${p.replicas.map((rep) => `${rep.address} ${rep.state}`).join(", ") || "no replica"}]`,
          )
          .join(" ");
        console.log(
          `topology   ${r.topology.kind}${r.topology.sentinelName ? ` "${r.topology.sentinelName}"` : ""}: ${primaries}; writes wait for ${r.waitReplicas?.effective ?? 0} replica(s)`,
        );
      }
      console.log(`last load  ${s.lastCatchUpAt ? new Date(s.lastCatchUpAt).toISOString() : "never"}`);
    } else {
      console.log(`listening  ${s.addresses.join(" ")}`);
      console.log(
        `mesh       ${s.meshSize} peer(s); last catch-up ${s.lastCatchUpAt ? new Date(s.lastCatchUpAt).toISOString() : "never"}`,
      );
    }
    console.log(
      `messages   in ${s.counters.messagesIn}, out ${s.counters.messagesOut}, rejected ${rejected}; catch-ups ${s.counters.catchUps} (${s.counters.recordsPulled} records)`,
    );
    console.log(
      `lag        ${s.replicationLagMs.samples ? `p50 ${s.replicationLagMs.p50} ms, max ${s.replicationLagMs.max} ms` : "no remote writes in the last minute"}`,
    );
    console.log(
      `tables     ${Object.entries(s.tables)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}`,
    );
    console.log("");
    console.log(
      table(
        s.peers.map((p) => ({
          peer: p.id,
          connected: p.connected ? "yes" : "no",
          state: !p.connected ? "down" : p.up === false ? `down (silent ${p.silentMs ?? 0} ms)` : "up",
          address: p.addresses[0] ?? "",
          ping: p.pingMs === null ? "" : `${p.pingMs} ms`,
          http: p.meta.httpUrl ?? "",
        })),
      ),
    );
    return;
  }
  if (command === "backup" && name) {
    const { backup } = await import("./backup");
    const dataDir = option(args, "--data-dir");
    console.log(await backup(name, dataDir));
    return;
  }
  if (command === "accept-file") {
    const { acceptFile } = await import("./backup");
    console.log(await acceptFile(option(args, "--data-dir")));
    return;
  }
  if (command === "table" && name) {
    const { rows } = (await get(`${base}/cluster/tables/${encodeURIComponent(name)}.json`, cookie)) as {
      rows: Record<string, unknown>[];
    };
    console.log(table(rows));
    console.log(`\n${rows.length} row(s)`);
    return;
  }
  console.error(
    "usage: npm run cluster -- status [--url http://localhost:3000]\n       npm run cluster -- table <users|sessions|revocations|emails|linkUses> [--url …]\n       npm run cluster -- backup <file> [--data-dir DIR]\n       npm run cluster -- accept-file [--data-dir DIR]",
  );
  process.exitCode = 2;
}

main(process.argv.slice(2)).catch((error: Error) => {
  console.error(error.message);
  process.exitCode = 1;
});
