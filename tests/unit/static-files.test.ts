import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { staticFiles } from "#server/static-files.ts";

let dir: string;
let server: Server;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "static-files-"));
  mkdirSync(path.join(dir, "assets"));
  mkdirSync(path.join(dir, "fonts"));
  writeFileSync(path.join(dir, "assets", "app-1234.js"), "console.log(1)");
  writeFileSync(path.join(dir, "favicon.svg"), "<svg/>");
  writeFileSync(path.join(dir, "fonts", "a.woff2"), "font");
  const app = express();
  app.use(staticFiles(dir));
  app.use((req, res) => res.status(404).json({ fellThrough: req.path }));
  await new Promise<void>((resolve) => {
    server = app.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

describe("static files only where they are", () => {
  it("serves hashed assets as immutable and the public files by their exact path", async () => {
    const asset = await fetch(`${base}/assets/app-1234.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get("cache-control")).toContain("immutable");
    const icon = await fetch(`${base}/favicon.svg`);
    expect(icon.status).toBe(200);
    expect(await icon.text()).toBe("<svg/>");
    expect((await fetch(`${base}/fonts/a.woff2`)).status).toBe(200);
  });

  it("leaves every other path to the app, without looking on disk: a file added later is not served", async () => {
    writeFileSync(path.join(dir, "late.txt"), "written after start");
    writeFileSync(path.join(dir, "login"), "not a page");
    for (const pathname of ["/late.txt", "/login", "/api/me", "/favicon.svg/x"]) {
      const res = await fetch(`${base}${pathname}`);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ fellThrough: pathname });
    }
  });
});
