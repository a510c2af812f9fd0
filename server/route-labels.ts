/**
 * The `route` label of a request for /metrics: the Remix route id that answers its path (found by
 * Remix's own matcher over the build's route manifest, so every route, including one added
 * tomorrow, is labelled by itself), a fixed name for what Express answers before Remix, and
 * `other` only for paths no route but the catch-all 404 matches. Labels are a bounded set: route ids, never raw paths.
 */
import { matchRoutes, type AgnosticRouteObject } from "@remix-run/router";
import type { ServerBuild } from "@remix-run/node";

/** What Express answers itself, before Remix (exact paths, then prefixes). */
const EXPRESS_PATHS = new Map([
  ["/healthz", "/healthz"],
  ["/readyz", "/readyz"],
  ["/metrics", "/metrics"],
  ["/auth/forward", "/auth/forward"],
  // Remix's lazy route discovery (the client asks which routes a link leads to)
  ["/__manifest", "/__manifest"],
  // the OpenID provider (app/lib/provider), answered before Remix
  ...[
    "/.well-known/openid-configuration",
    "/oidc/auth",
    "/oidc/token",
    "/oidc/me",
    "/oidc/jwks",
    "/oidc/token/revocation",
    "/oidc/token/introspection",
    "/oidc/device/auth",
    "/oidc/session/end",
    "/oidc/session/end/confirm",
    "/oidc/session/end/success",
    "/device",
  ].map((path): [string, string] => [path, path]),
]);
const EXPRESS_PREFIXES: Array<[string, string]> = [
  ["/assets/", "/assets/*"],
  ["/dev/oidc/", "/dev/oidc/*"],
  ["/oidc/auth/", "/oidc/auth/:uid"],
  ["/oidc/interaction/", "/oidc/interaction/:uid"],
  ["/oidc/", "/oidc/*"],
  ["/device/", "/device/:uid"],
];
/** the catch-all 404 route (app/routes/$.tsx) answers exactly the paths no other route matches */
const NOT_FOUND_ROUTE = "routes/$";
/** distinct paths remembered with their label: pages repeat, scans of random paths do not grow it */
const MEMO_SIZE = 2_000;

export type RouteManifest = ServerBuild["routes"];

export class RouteLabels {
  private tree: AgnosticRouteObject[] = [];
  private current: RouteManifest | undefined;
  private readonly memo = new Map<string, string>();

  constructor(routes?: RouteManifest) {
    if (routes) this.use(routes);
  }

  /** Label by this build's routes (at start; in `npm run dev`, on each rebuilt build). */
  use(routes: RouteManifest): void {
    if (routes === this.current) return;
    this.current = routes;
    const children = new Map<string | undefined, RouteManifest[string][]>();
    for (const route of Object.values(routes)) {
      const siblings = children.get(route.parentId) ?? [];
      siblings.push(route);
      children.set(route.parentId, siblings);
    }
    const build = (parentId: string | undefined): AgnosticRouteObject[] =>
      (children.get(parentId) ?? []).map((route) =>
        route.index
          ? { id: route.id, path: route.path, index: true, caseSensitive: route.caseSensitive }
          : { id: route.id, path: route.path, caseSensitive: route.caseSensitive, children: build(route.id) },
      );
    this.tree = build(undefined);
    this.memo.clear();
  }

  of(pathname: string): string {
    const fixed = EXPRESS_PATHS.get(pathname);
    if (fixed) return fixed;
    for (const [prefix, label] of EXPRESS_PREFIXES) if (pathname.startsWith(prefix)) return label;
    let label = this.memo.get(pathname);
    if (label === undefined) {
      // matchRoutes ranks the whole tree on each call (tens of µs): once per distinct path
      const matches = matchRoutes(this.tree, pathname);
      const id = matches?.[matches.length - 1]?.route.id;
      label = id === undefined || id === NOT_FOUND_ROUTE ? "other" : id;
      if (this.memo.size >= MEMO_SIZE) this.memo.delete(this.memo.keys().next().value!);
      this.memo.set(pathname, label);
    }
    return label;
  }
}
