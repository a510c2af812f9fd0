/**
 * The life of a node, top to bottom: config → keys → cluster → app → HTTP → signals.
 */
import type { Server } from "node:http";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { ServerBuild } from "@remix-run/node";
import type { RequestHandler } from "express";
import { PersistenceError, RedisStartError, startCluster, type Cluster } from "#cluster";
import type { ApiAnswers } from "#app/lib/session/api-answers.server.ts";
import type { WebhookStats } from "#app/lib/webhooks/webhooks.server.ts";
import type { OpenIdProvider } from "#app/lib/provider/index.server.ts";
import type { AppContext } from "../app/lib/context.server";
import { ConfigError, loadConfig, type Config } from "./config";
import { lazyDevOidc } from "./dev-oidc-lazy";
import { fastApi } from "./fast-api";
import { forwardAuthHandler } from "./forward-auth";
import { createApp } from "./http";
import { clusterKeyFor, deriveKeyRing } from "./keys";
import { createLogger } from "./log";
import { persistenceFor } from "./persistence";
import { preloadModules } from "./preload";
import { createMetrics } from "./metrics";
import { RouteLabels } from "./route-labels";

const SHUTDOWN_GRACE_MS = 10_000;
const DEV_OIDC_WARM_AFTER_MS = 1_000;

async function loadBuild(): Promise<ServerBuild> {
  return (await import(pathToFileURL(path.resolve("build/server/index.js")).href)) as ServerBuild;
}

/** `npm run dev`: Vite serves the client and rebuilds the server bundle on change. */
async function startVite() {
  const vite = await import("vite");
  const server = await vite.createServer({ server: { middlewareMode: true } });
  return {
    middleware: server.middlewares as unknown as RequestHandler,
    load: () => server.ssrLoadModule("virtual:remix/server-build") as Promise<ServerBuild>,
  };
}

/** Redis mode's topology as /readyz says it: kinds and counts, no addresses (/cluster has those). */
function redisReadiness(cluster: Cluster): Record<string, unknown> {
  const redis = cluster.status().redis;
  if (!redis) return {};
  const { topology, waitReplicas, reseeds, connection } = redis;
  return {
    redis: {
      topology: topology.kind,
      connection,
      primaries: topology.primaries.length,
      replicasOnline: topology.primaries.reduce((n, p) => n + p.replicas.filter((r) => r.state === "online").length, 0),
      waitReplicas: waitReplicas.effective,
      reseeding: reseeds.running,
    },
  };
}

async function main() {
  const boot = createLogger();
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) process.stderr.write(`config: ${problem}\n`);
      process.stderr.write("The server did not start; fix the settings above (see README, Settings).\n");
      process.exit(1);
    }
    throw error;
  }
  if (config.offLoopbackOverride) {
    boot.warn(
      `ALLOW_NON_LOOPBACK_LOCAL_MODE: local mode on ${config.appUrl.origin} (HOST ${config.host}), not for production; the Dev OIDC provider is off and /cluster needs ADMIN_EMAILS`,
      { event: "unsafe-mode" },
    );
  }
  const keys = deriveKeyRing(config.secretKeyBase, config.secretKeyBasePrevious);
  const dev = process.argv.includes("--dev") ? await startVite() : undefined;
  // A built app runs React's production build in every mode, as remix-serve does: its development
  // build checks props on every render (a large share of a page's CPU). NODE_ENV set the mode above.
  if (!dev) process.env.NODE_ENV = "production";
  // the built app is loaded before the node joins its cluster: evaluating it holds the event loop
  // for a while, which must not happen while peers stream rows to this node
  let built: ServerBuild | undefined;
  if (!dev) {
    try {
      built = await loadBuild();
    } catch (error) {
      boot.error("the app could not be loaded: run `npm run build` (npm start does it for you)", { error });
      process.exit(1);
    }
  }

  // oidc-provider loads while the node starts (a restore reads the files on a worker meanwhile),
  // not later, when peers may be streaming rows to or from it
  void preloadModules({ oidcProvider: config.oauth.dev !== undefined || config.provider !== undefined });

  const cluster = await startCluster(
    {
      redis: config.cluster.redis,
      clusterName: config.cluster.name,
      clusterKey: clusterKeyFor(keys, config.cluster.secret),
      dataDir: config.dataDir,
      host: config.cluster.host,
      port: config.cluster.port,
      peers: config.cluster.peers,
      dns: config.cluster.dns,
      discovery: config.cluster.discovery,
      registryDir: config.cluster.registryDir,
      meta: { httpUrl: config.appUrl.origin },
    },
    boot,
    // declared before the node connects, so records pulled at once merge by the right rule, and
    // the app's indexes are kept while rows are restored or pulled (not built in one go after)
    {
      tables: {
        emails: { merge: "first-writer-wins" },
        users: { indexes: ["email"] },
        sessions: { indexes: ["uid"] },
        passkeys: { indexes: ["uid"] },
      },
      persistence: persistenceFor(config),
      tombstoneTtlMs: config.tombstoneHorizonMs,
      timings: {
        peerWaitMs: config.cluster.readyTimeoutMs,
        tombstoneCollectMs: Math.min(10 * 60_000, Math.max(500, Math.floor(config.tombstoneHorizonMs / 2))),
      },
      acks: config.cluster.acks,
    },
  ).catch((error: unknown): Cluster => {
    // a wrong Redis password or host: one line, not a stack
    if (!(error instanceof RedisStartError)) throw error;
    process.stderr.write(`cluster: ${error.message}\nThe server did not start (see README, Redis mode).\n`);
    process.exit(1);
  });
  const log = boot.child({ node: cluster.nodeId.slice(-8) });

  // labelled by the build's routes once it is loaded (below)
  const routeLabels = new RouteLabels();
  const metrics = createMetrics({
    status: () => cluster.status(),
    routes: routeLabels,
    webhooks: () => app.webhooks(),
    // open in local mode (its APP_URL is loopback); production: METRICS_TOKEN or an administrator
    access:
      config.mode === "production"
        ? { token: config.metricsToken, isAdmin: (request) => app.api.isAdmin(request) }
        : undefined,
  });
  const appContext: AppContext = { config, keys, cluster, log: metrics.countingAudit(log) };
  let build: ServerBuild;
  try {
    build = built ?? (await dev!.load());
  } catch (error) {
    log.error("the app could not be loaded: run `npm run build` (npm start does it for you)", { error });
    await cluster.stop();
    process.exit(1);
  }
  routeLabels.use(build.routes);
  const entry = build.entry.module as unknown as {
    initialise(ctx: AppContext): { stop(): void; api: ApiAnswers; webhooks(): WebhookStats; provider: OpenIdProvider };
  };
  const app = entry.initialise(appContext);

  const devOidc = lazyDevOidc(config, keys, log);
  // "acknowledged means durable": a request that wrote waits for its writes (file or Redis)
  const durability = { writes: () => cluster.store.counters.localWrites, durable: () => cluster.durable() };
  const server: Server = createApp({
    config,
    log,
    build: dev
      ? async () => {
          const fresh = await dev.load();
          routeLabels.use(fresh.routes);
          return fresh;
        }
      : build,
    devMiddleware: dev?.middleware,
    devOidc,
    // `npm run dev` reloads the routes on change: there the API stays with Remix
    fastApi: dev ? undefined : fastApi(app.api, durability, log),
    forwardAuth: forwardAuthHandler(app.api, log),
    metrics,
    openIdProvider: app.provider.enabled ? app.provider : undefined,
    appContext,
    isReady: () => cluster.isReady(),
    readyDetail: () => redisReadiness(cluster),
    durability,
  }).listen(config.port, config.host);
  server.keepAliveTimeout = 5_000;
  server.on("listening", () => {
    // after the start, not on its path: the first "Sign in with Dev OIDC" then finds it loaded
    if (devOidc) setTimeout(() => devOidc.warm(), DEV_OIDC_WARM_AFTER_MS).unref();
    // the OpenID provider (oidc-provider and its RSA key) likewise, so an app's first sign-in finds it ready
    if (app.provider.enabled) setTimeout(() => app.provider.warm(), DEV_OIDC_WARM_AFTER_MS).unref();
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : config.port;
    log.info(`listening on http://${config.host}:${port}`, {
      mode: config.mode,
      appUrl: config.appUrl.origin,
      secret: config.secretSource,
      mail: config.smtpUrl ? "smtp" : "outbox at /dev/mailbox",
      openIdProvider: config.provider ? `${config.provider.clients.length} client(s)` : "off",
      cluster: config.cluster.name,
      clusterMode: cluster.status().mode,
      discovery: config.cluster.discovery,
      clusterAddresses: cluster.status().addresses,
    });
  });
  server.on("error", async (error) => {
    log.error("HTTP listener failed", { error });
    await cluster.stop();
    process.exit(1);
  });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down: no new connections, finishing requests", { signal });
    const force = setTimeout(() => {
      log.warn("requests still open after the grace period; closing them");
      server.closeAllConnections();
    }, SHUTDOWN_GRACE_MS);
    force.unref();
    // requests in flight finish; their keep-alive connections are closed as soon as they are idle
    const closeIdle = setInterval(() => server.closeIdleConnections(), 100);
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    clearInterval(closeIdle);
    app.stop();
    await cluster.stop();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((error) => {
  // a tables file this node must not use: one line saying what and how; the file is left untouched
  if (error instanceof PersistenceError) {
    process.stderr.write(`tables file: ${error.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`fatal: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
