/**
 * `GET /metrics` in the Prometheus text format (prom-client): HTTP requests and their latency by
 * route (the Remix route id) and status, sign-ins by method (from the audit trail), the cluster's counters, replication
 * lag and table sizes (read from `cluster.status()` at scrape time, never per request), and Node's
 * own event-loop delay, heap and CPU.
 */
import { timingSafeEqual, createHash } from "node:crypto";
import type { RequestHandler } from "express";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ClusterStatus } from "#cluster";
import type { WithHeaders } from "#app/lib/session/auth.server.ts";
import type { WebhookStats } from "#app/lib/webhooks/webhooks.server.ts";
import type { Fields, Logger } from "./log";
import type { RouteLabels } from "./route-labels";

const LABEL_VALUE = /^[a-z0-9-]{1,32}$/;
/** a member's label: its libp2p peer id (base58, bounded by the membership), or "other" */
const peerLabel = (id: string) => (/^[1-9A-HJ-NP-Za-km-z]{1,128}$/.test(id) ? id : "other");
const bounded = (value: unknown) => (typeof value === "string" && LABEL_VALUE.test(value) ? value : "other");

export interface MetricsDeps {
  status: () => ClusterStatus;
  /** the `route` label: the Remix route id of the path, or what Express answers itself (route-labels.ts) */
  routes: Pick<RouteLabels, "of">;
  /** the webhook queue's counters (app/lib/webhooks), read at scrape time */
  webhooks?: () => WebhookStats;
  /** who may scrape: undefined = open (local mode); else a token or an administrator's session */
  access:
    | undefined
    | {
        token: string | undefined;
        /** true when the request's session belongs to one of ADMIN_EMAILS */
        isAdmin: (request: WithHeaders) => Promise<boolean>;
      };
}

export interface Metrics {
  /** first in the chain: times every answer, labelled on `finish` */
  middleware: RequestHandler;
  /** the `/metrics` endpoint */
  handler: RequestHandler;
  /** the logger the app gets: audit lines also count (`sign-in` by method, every event by name) */
  countingAudit(log: Logger): Logger;
}

const sha256 = (value: string) => createHash("sha256").update(value).digest();

export function createMetrics({ status, routes, access, webhooks }: MetricsDeps): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });

  const requests = new Histogram({
    name: "pwdless_http_request_duration_seconds",
    help: "HTTP answers by method, route (the Remix route id that answers) and status, with their latency",
    // route: a Remix route id (`routes/account`), an Express path (`/healthz`), `static`, or `other`
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const signIns = new Counter({
    name: "pwdless_sign_ins_total",
    help: "completed sign-ins on this node, by method",
    labelNames: ["method"] as const,
    registers: [registry],
  });
  const auditEvents = new Counter({
    name: "pwdless_audit_events_total",
    help: "audit events on this node, by event",
    labelNames: ["event"] as const,
    registers: [registry],
  });

  // The cluster's figures are read once per scrape: `collect` runs when Prometheus asks.
  let snapshot: ClusterStatus | undefined;
  const read = () => (snapshot ??= status());
  type Values = Array<[Record<string, string>, number]>;
  const gauge = (name: string, help: string, labelNames: string[], values: (s: ClusterStatus) => Values) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const [labels, value] of values(read())) this.set(labels, value);
      },
    });
  // the cluster keeps running totals: each scrape sets the counter to the total it reads
  const counter = (name: string, help: string, labelNames: string[], values: (s: ClusterStatus) => Values) =>
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const [labels, value] of values(read())) this.inc(labels, value);
      },
    });
  gauge(
    "pwdless_cluster_ready",
    "1 once this node is ready: caught up with a peer, or with nobody to catch up from",
    [],
    (s) => [[{}, s.ready ? 1 : 0]],
  );
  gauge("pwdless_cluster_peers", "connected cluster members", [], (s) => [
    [{}, s.peers.filter((p) => p.connected).length],
  ]);
  // gossip mode: the liveness view (heartbeats), fresher than the connection; one series per member
  gauge(
    "pwdless_cluster_peer_up",
    "1 while a member is connected and answering heartbeats, 0 once marked down",
    ["peer"],
    (s) => (s.mode === "gossip" ? s.peers.map((p) => [{ peer: peerLabel(p.id) }, p.up ? 1 : 0]) : []),
  );
  gauge("pwdless_cluster_peers_up", "members connected and answering heartbeats", [], (s) => [
    [{}, s.peers.filter((p) => p.up ?? p.connected).length],
  ]);
  counter(
    "pwdless_cluster_peer_transitions_total",
    "members marked down (silent or closed) and back up",
    ["to"],
    (s) =>
      s.liveness
        ? [
            [{ to: "down" }, s.liveness.down],
            [{ to: "up" }, s.liveness.up],
          ]
        : [],
  );
  counter(
    "pwdless_cluster_acks_total",
    "answers that reported a write, by how their copies went (ACK_COPIES): copied, alone, timed-out (answered), refused (ACK_STRICT)",
    ["outcome"],
    (s) =>
      s.acks
        ? [
            [{ outcome: "copied" }, s.acks.counters.copied],
            [{ outcome: "alone" }, s.acks.counters.alone],
            [{ outcome: "timed-out" }, s.acks.counters.timedOut],
            [{ outcome: "refused" }, s.acks.counters.refused],
          ]
        : [],
  );
  counter(
    "pwdless_cluster_ack_writes_abandoned_total",
    "writes no peer confirmed before the copy buffer filled",
    [],
    (s) => (s.acks ? [[{}, s.acks.counters.abandoned]] : []),
  );
  gauge("pwdless_cluster_acks_waiting", "answers waiting for a peer's copy now", [], (s) =>
    s.acks ? [[{}, s.acks.waiting]] : [],
  );
  gauge(
    "pwdless_cluster_ack_wait_seconds",
    "how long answers waited for a peer's copy over the last minute (p50, p99, max)",
    ["stat"],
    (s) => {
      const w = s.acks?.waitMs;
      if (!w) return [];
      const values: Values = [];
      for (const stat of ["p50", "p99", "max"] as const) {
        const ms = w[stat];
        if (ms !== null) values.push([{ stat }, ms / 1000]);
      }
      return values;
    },
  );
  counter(
    "pwdless_cluster_inbound_refused_total",
    "inbound cluster connections refused or cut before their handshake finished, by reason",
    ["reason"],
    (s) => Object.entries(s.inboundRefused).map(([reason, n]) => [{ reason: bounded(reason) }, n]),
  );
  gauge("pwdless_cluster_mesh_peers", "peers in this node's gossip mesh", [], (s) => [[{}, s.meshSize]]);
  gauge("pwdless_cluster_table_rows", "rows held per replicated table", ["table"], (s) =>
    Object.entries(s.tables).map(([table, rows]) => [{ table }, rows]),
  );
  gauge(
    "pwdless_cluster_replication_lag_seconds",
    "now minus the stamp of records applied from gossip over the last minute (p50 and max)",
    ["stat"],
    (s) => {
      const { p50, max } = s.replicationLagMs;
      const values: Values = [];
      if (p50 !== null) values.push([{ stat: "p50" }, p50 / 1000]);
      if (max !== null) values.push([{ stat: "max" }, max / 1000]);
      return values;
    },
  );
  gauge("pwdless_cluster_replication_lag_samples", "records behind the lag figures", [], (s) => [
    [{}, s.replicationLagMs.samples],
  ]);
  counter(
    "pwdless_cluster_gossip_messages_total",
    "gossip messages received (in) and published (out)",
    ["direction"],
    (s) => [
      [{ direction: "in" }, s.counters.messagesIn],
      [{ direction: "out" }, s.counters.messagesOut],
    ],
  );
  counter(
    "pwdless_cluster_gossip_rejected_total",
    "gossip messages the validators rejected, by reason",
    ["reason"],
    (s) => Object.entries(s.counters.rejected).map(([reason, count]) => [{ reason: bounded(reason) }, count]),
  );
  counter("pwdless_cluster_catchups_total", "catch-up runs with a peer, by result", ["result"], (s) => [
    [{ result: "ok" }, s.counters.catchUps],
    [{ result: "failed" }, s.counters.catchUpFailures],
  ]);
  counter("pwdless_cluster_catchup_records_total", "records pulled by catch-up", [], (s) => [
    [{}, s.counters.recordsPulled],
  ]);
  counter("pwdless_cluster_tombstones_collected_total", "tombstones collected", [], (s) => [
    [{}, s.counters.tombstonesCollected],
  ]);
  // Redis mode only: replicas that confirm writes, confirmations that fell short, re-seeds
  gauge("pwdless_cluster_redis_wait_replicas", "replicas each write waits for (Redis WAIT)", [], (s) =>
    s.redis ? [[{}, s.redis.waitReplicas.effective]] : [],
  );
  gauge("pwdless_cluster_redis_replicas_online", "online replicas of the Redis primaries", [], (s) =>
    s.redis
      ? [
          [
            {},
            s.redis.topology.primaries.reduce((n, p) => n + p.replicas.filter((r) => r.state === "online").length, 0),
          ],
        ]
      : [],
  );
  counter(
    "pwdless_cluster_redis_wait_shortfalls_total",
    "WAITs answered by fewer replicas than asked (auto: acknowledged on the primary alone)",
    [],
    (s) => (s.redis ? [[{}, s.redis.waitReplicas.shortfalls]] : []),
  );
  counter(
    "pwdless_cluster_redis_reseeds_total",
    "times this node put its rows back into a Redis that lost them",
    [],
    (s) => (s.redis ? [[{}, s.redis.reseeds.count]] : []),
  );

  if (webhooks) {
    const hooks = () => {
      try {
        return webhooks();
      } catch {
        return undefined; // the app is not initialised yet
      }
    };
    new Gauge({
      name: "pwdless_webhook_queue_events",
      help: "webhook events this node still has to deliver",
      registers: [registry],
      collect() {
        this.set(hooks()?.queued ?? 0);
      },
    });
    new Counter({
      name: "pwdless_webhook_events_total",
      help: "webhook events by outcome: delivered, dropped (queue full), expired (24 h of retries)",
      labelNames: ["outcome"],
      registers: [registry],
      collect() {
        this.reset();
        const s = hooks();
        if (!s) return;
        this.inc({ outcome: "delivered" }, s.delivered);
        this.inc({ outcome: "dropped" }, s.dropped);
        this.inc({ outcome: "expired" }, s.expired);
      },
    });
    new Counter({
      name: "pwdless_webhook_attempts_total",
      help: "webhook POSTs by result",
      labelNames: ["result"],
      registers: [registry],
      collect() {
        this.reset();
        const s = hooks();
        if (!s) return;
        this.inc({ result: "ok" }, s.attempts - s.failedAttempts);
        this.inc({ result: "failed" }, s.failedAttempts);
      },
    });
  }

  const middleware: RequestHandler = (req, res, next) => {
    const started = performance.now();
    res.once("finish", () => {
      requests.observe(
        {
          method: req.method,
          route: (res.locals.routeLabel as string | undefined) ?? routes.of(req.path),
          status: String(res.statusCode),
        },
        (performance.now() - started) / 1000,
      );
    });
    next();
  };

  const tokenHash = access?.token ? sha256(access.token) : undefined;
  const allowed = async (req: Parameters<RequestHandler>[0]): Promise<"ok" | 401 | 403> => {
    if (!access) return "ok";
    const bearer = /^Bearer (\S+)$/.exec(req.get("Authorization") ?? "")?.[1];
    // compared as hashes: equal lengths for timingSafeEqual, nothing learnt from the time taken
    if (bearer && tokenHash && timingSafeEqual(sha256(bearer), tokenHash)) return "ok";
    const request: WithHeaders = { headers: { get: (name) => req.get(name) ?? null } };
    if (await access.isAdmin(request)) return "ok";
    return bearer || req.get("Cookie") ? 403 : 401;
  };

  const handler: RequestHandler = async (req, res, next) => {
    try {
      const verdict = await allowed(req);
      if (verdict !== "ok") {
        res.status(verdict).set("Cache-Control", "no-store");
        if (verdict === 401) res.set("WWW-Authenticate", 'Bearer realm="metrics"');
        res.json({
          error: verdict === 401 ? "unauthorized" : "forbidden",
          message: "Metrics need METRICS_TOKEN as a Bearer token, or an ADMIN_EMAILS session.",
        });
        return;
      }
      snapshot = undefined;
      const body = await registry.metrics();
      res.status(200).set("Cache-Control", "no-store").type(registry.contentType).send(body);
    } catch (error) {
      next(error);
    }
  };

  const countingAudit = (log: Logger): Logger => {
    const count = (fields: Fields | undefined) => {
      if (fields?.audit !== true) return;
      auditEvents.inc({ event: bounded(fields.event) });
      if (fields.event === "sign-in") signIns.inc({ method: bounded(fields.method) });
    };
    return {
      info: (msg, fields) => (count(fields), log.info(msg, fields)),
      warn: (msg, fields) => (count(fields), log.warn(msg, fields)),
      error: (msg, fields) => (count(fields), log.error(msg, fields)),
      child: (fields) => countingAudit(log.child(fields)),
    };
  };

  return { middleware, handler, countingAudit };
}
