/**
 * The built client's files, served only where they are: `/assets/*` (hashed, immutable) and the
 * exact paths of the other files (public/), so pages and `/api/*` never cause a disk lookup.
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import express, { type Router } from "express";

/** Every file under `dir` except `assets/`, as URL paths (read once, at start). */
function publicPaths(dir: string, prefix = ""): string[] {
  const entries = readdirSync(dir, { withFileTypes: true });
  return entries.flatMap((entry) => {
    if (entry.isDirectory()) {
      return prefix === "" && entry.name === "assets"
        ? []
        : publicPaths(path.join(dir, entry.name), `${prefix}/${entry.name}`);
    }
    return entry.isFile() ? [`${prefix}/${entry.name}`] : [];
  });
}

export function staticFiles(client: string): Router {
  const router = express.Router();
  router.use(
    "/assets",
    express.static(path.join(client, "assets"), { immutable: true, maxAge: "1y", index: false, fallthrough: true }),
  );
  const files = publicPaths(client);
  if (files.length > 0) {
    router.get(
      files,
      (_req, res, next) => {
        res.locals.routeLabel = "static";
        next();
      },
      express.static(client, { maxAge: "1h", index: false }),
    );
  }
  return router;
}
