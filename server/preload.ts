/**
 * Module graphs loaded while the node starts rather than on first use: compiling and evaluating
 * oidc-provider (koa and its own dependencies; Dev OIDC and the OpenID provider both use it) holds
 * the event loop ~100 ms on-CPU, in pieces that cannot be sliced. Loaded 1 s after listening, as
 * it was, that fell in the middle of a joiner's catch-up (and of a holder's serving one). Started
 * before the cluster node, it runs while a restore reads the files on its worker thread, or while
 * a joiner's node starts, before any peer streams rows to it. `import` resolves to the loaded module.
 */
export function preloadModules(
  wanted: { oidcProvider: boolean },
  load: (specifier: string) => Promise<unknown> = (specifier) => import(specifier),
): Promise<void> {
  if (!wanted.oidcProvider) return Promise.resolve();
  // a failure shows again, with its context, where the module is used
  return load("oidc-provider").then(
    () => undefined,
    () => undefined,
  );
}
