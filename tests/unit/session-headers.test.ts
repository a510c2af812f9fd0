import { afterAll, beforeAll, describe, expect, it } from "vitest";
import express from "express";
import type { Server } from "node:http";
import { sendSessionHeaders, sessionHeadersOf } from "../../server/session-headers";

/** A real Express app: what a route sets itself, and what the session layer left pending. */
describe("pending session headers, attached by the server", () => {
  let server: Server;
  let base = "";
  beforeAll(async () => {
    const app = express();
    app.get("/pending-only", (_req, res) => {
      const out = sessionHeadersOf(res);
      out.cookie("pwdless_session=old; Path=/");
      out.cookie("pwdless_session=renewed; Path=/"); // the later one for a name wins
      out.header("X-Access-Token", "fresh");
      sendSessionHeaders(res);
      sendSessionHeaders(res); // every way out may call it: idempotent
      res.json({ ok: true });
    });
    app.get("/route-sets-its-own", (_req, res) => {
      sessionHeadersOf(res).cookie("pwdless_session=renewed; Path=/");
      sessionHeadersOf(res).cookie("other=1; Path=/");
      // a sign-out's clearing, set by the route on purpose, is not overridden by a pending renewal
      res.append("Set-Cookie", "pwdless_session=; Max-Age=0; Path=/");
      res.setHeader("X-Access-Token", "route");
      sessionHeadersOf(res).header("X-Access-Token", "pending");
      sendSessionHeaders(res);
      res.json({ ok: true });
    });
    app.get("/nothing", (_req, res) => {
      sendSessionHeaders(res);
      res.json({ ok: true });
    });
    server = app.listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("sends what is pending: one Set-Cookie per cookie name, the latest, and the headers", async () => {
    const res = await fetch(`${base}/pending-only`);
    expect(res.headers.getSetCookie()).toEqual(["pwdless_session=renewed; Path=/"]);
    expect(res.headers.get("x-access-token")).toBe("fresh");
  });

  it("leaves what the route set itself as it set it, and adds the rest", async () => {
    const res = await fetch(`${base}/route-sets-its-own`);
    expect(res.headers.getSetCookie()).toEqual(["pwdless_session=; Max-Age=0; Path=/", "other=1; Path=/"]);
    expect(res.headers.get("x-access-token")).toBe("route");
  });

  it("adds nothing when nothing is pending", async () => {
    const res = await fetch(`${base}/nothing`);
    expect(res.headers.getSetCookie()).toEqual([]);
  });
});
