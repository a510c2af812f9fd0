// The OpenID provider across two gossip nodes behind one balancer (APP_URL): a flow started on A
// finishes on B, a code or a device code is redeemed once whichever node is asked, and a replayed
// refresh token or an ended session stops the family on every node.
import { createServer, type Server } from "node:http";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Balancer } from "../support/balancer";
import { racedCodesHaveOneWinner, replayRevokesFamily } from "../support/oidc-journeys";
import { clusterEnv } from "../support/cluster";
import { CookieJar } from "../support/cookie-jar";
import { form } from "../support/flows";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import {
  SECRET,
  approveDevice,
  clientsFile,
  codeFlow,
  codeGrant,
  pollDevice,
  refreshGrant,
  standardClients,
  startDevice,
  token,
  userinfo,
  visit,
} from "../support/oidc";
import { freePort } from "../support/ports";
import { TestSmtpServer } from "../support/smtp";
import { waitFor } from "../support/wait";

describe("Sign in with PwdlessGs across two gossip nodes", () => {
  let smtp: TestSmtpServer;
  let balancer: Balancer;
  let a: NodeProcess;
  let b: NodeProcess;
  let logoutServer: Server;
  const logoutTokens: string[] = [];

  beforeAll(async () => {
    smtp = await new TestSmtpServer().start();
    balancer = await Balancer.start();
    const logoutPort = await freePort();
    logoutServer = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        logoutTokens.push(new URLSearchParams(body).get("logout_token") ?? "");
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => logoutServer.listen(logoutPort, "127.0.0.1", () => resolve()));
    const clients = [
      ...standardClients(),
      {
        client_id: "listener",
        client_name: "Listening App",
        client_secret: SECRET,
        redirect_uris: ["http://127.0.0.1:9/callback"],
        grant_types: ["authorization_code", "refresh_token"],
        first_party: true,
        backchannel_logout_uri: `http://127.0.0.1:${logoutPort}/backchannel`,
        backchannel_logout_session_required: true,
      },
    ];
    const env = {
      ...clusterEnv(),
      APP_URL: balancer.url,
      SMTP_URL: smtp.url,
      OIDC_PROVIDER_CLIENTS_FILE: clientsFile(clients),
    };
    a = await startNode({ env });
    b = await startNode({ env });
    // both ready: each has caught up from the other, so they are connected
    await waitFor(
      "both nodes ready",
      async () => (await a.fetch("/readyz")).ok && (await b.fetch("/readyz")).ok,
      30_000,
    );
    balancer.route(a);
  });

  afterAll(async () => {
    await stopAllNodes();
    await balancer.stop();
    await smtp.stop();
    await new Promise<void>((resolve) => logoutServer.close(() => resolve()));
  });

  it("serves discovery with APP_URL as issuer, and the same signing keys, from both nodes", async () => {
    const [keysA, keysB] = await Promise.all(
      [a, b].map(async (node) => (await balancer.via(node).fetch("/oidc/jwks")).text()),
    );
    expect(JSON.parse(keysA!).keys).toHaveLength(2);
    expect(keysB).toBe(keysA);
    for (const node of [a, b]) {
      const meta = (await (await balancer.via(node).fetch("/.well-known/openid-configuration")).json()) as {
        issuer: string;
        token_endpoint: string;
      };
      expect(meta.issuer).toBe(balancer.url);
      expect(meta.token_endpoint).toBe(`${balancer.url}/oidc/token`);
    }
  });

  it("a code from A is exchanged on B, refreshed on B, and its access token works on A", async () => {
    const jar = new CookieJar();
    balancer.route(a);
    const { code, verifier, redirectUri } = await codeFlow(balancer, jar, { email: "across@example.com", smtp });
    const tokens = await token(balancer.via(b), codeGrant({ code, verifier, redirectUri }));
    expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
    const { payload } = await jwtVerify(
      String(tokens.body.id_token),
      createRemoteJWKSet(new URL("/oidc/jwks", balancer.url)),
      {
        issuer: balancer.url,
        audience: "web",
      },
    );
    expect(payload.email).toBe("across@example.com");
    const refreshed = await token(balancer.via(b), refreshGrant(tokens.body.refresh_token));
    expect(refreshed.status).toBe(200);
    expect((await userinfo(balancer.via(a), String(refreshed.body.access_token))).status).toBe(200);
  });

  it("the same code exchanged on A and B at once: exactly one gets tokens, whichever node issued it", async () => {
    await racedCodesHaveOneWinner(balancer, [a, b], [a, b, a, b], { email: "race@example.com", smtp });
  });

  it("a refresh token rotated on A and replayed on B revokes the family on both", async () => {
    await replayRevokesFamily(
      balancer,
      { issueOn: a, rotateOn: a, replayOn: b, nodes: [a, b] },
      { email: "family@example.com", smtp },
    );
  });

  it("a device code approved on B is redeemed once by a CLI polling A", async () => {
    const start = await startDevice(balancer.via(a));
    expect(start.verification_uri).toBe(`${balancer.url}/device`);
    expect((await pollDevice(balancer.via(a), start.device_code)).body.error).toBe("authorization_pending");
    balancer.route(b);
    const jar = new CookieJar();
    const done = await approveDevice(balancer, jar, start.user_code, { email: "device@example.com", smtp });
    expect(done.stoppedAt?.body).toContain("Your device is signed in");
    const tokens = await waitFor("the CLI's tokens on A", async () => {
      const answer = await pollDevice(balancer.via(a), start.device_code);
      return answer.status === 200 ? answer : undefined;
    });
    expect(tokens.body.refresh_token).toBeTruthy();
    const again = await Promise.all([
      pollDevice(balancer.via(a), start.device_code),
      pollDevice(balancer.via(b), start.device_code),
    ]);
    for (const answer of again) expect(answer.body.error).toBe("invalid_grant");
  });

  it("a session ended from /account on B revokes the app's tokens on A, and the app hears of it (back-channel logout)", async () => {
    const jar = new CookieJar();
    balancer.route(a);
    const listen = await codeFlow(balancer, jar, { email: "ended@example.com", smtp }, { clientId: "listener" });
    const tokens = await token(
      balancer.via(a),
      {
        grant_type: "authorization_code",
        code: listen.code,
        code_verifier: listen.verifier,
        redirect_uri: listen.redirectUri,
      },
      { id: "listener", secret: SECRET },
    );
    expect(tokens.status).toBe(200);
    const sid = (await jwtVerify(String(tokens.body.id_token), createRemoteJWKSet(new URL("/oidc/jwks", balancer.url))))
      .payload.sid;
    balancer.route(b);
    const account = await (await visit(balancer, jar, "/account")).text();
    const mySid = /name="sid" value="([^"]+)"/.exec(account)![1]!;
    expect((await visit(balancer, jar, "/account", form({ sid: mySid }))).status).toBe(302);
    // the revocation replicates to A within moments (a read, so nothing rotates while we wait)
    await waitFor("the app's access token refused on A", async () => {
      return (await userinfo(balancer.via(a), String(tokens.body.access_token))).status === 401;
    });
    const refresh = await token(balancer.via(a), refreshGrant(tokens.body.refresh_token), {
      id: "listener",
      secret: SECRET,
    });
    expect(refresh.body.error).toBe("invalid_grant");
    const logoutToken = await waitFor("a back-channel logout token", () => logoutTokens.at(-1));
    const { payload } = await jwtVerify(logoutToken, createRemoteJWKSet(new URL("/oidc/jwks", balancer.url)), {
      issuer: balancer.url,
      audience: "listener",
    });
    expect(payload.sid).toBe(sid);
    expect(payload.events).toHaveProperty(["http://schemas.openid.net/event/backchannel-logout"]);
  });

  it("RP-initiated logout on A ends the PwdlessGs session on every node, and the app's tokens", async () => {
    const jar = new CookieJar();
    balancer.route(a);
    const { code, verifier, redirectUri } = await codeFlow(balancer, jar, { email: "rp-out@example.com", smtp });
    const tokens = await token(balancer.via(a), codeGrant({ code, verifier, redirectUri }));
    const kept = jar.clone();
    const ask = await visit(
      balancer,
      jar,
      `/oidc/session/end?${new URLSearchParams({
        id_token_hint: String(tokens.body.id_token),
        post_logout_redirect_uri: "http://127.0.0.1:9/",
        state: "bye",
      })}`,
    );
    expect(ask.status).toBe(200);
    const page = await ask.text();
    expect(page).toContain("Sign out of PwdlessGs?");
    expect(page).toContain("Team Web App asked to sign you out.");
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(page)![1]!;
    const done = await visit(balancer, jar, "/oidc/session/end/confirm", form({ xsrf, logout: "yes" }));
    expect(done.status).toBe(303);
    expect(done.headers.get("location")).toBe("http://127.0.0.1:9/?state=bye");
    expect(
      done.headers
        .getSetCookie()
        .some((c) => c.startsWith("pwdless_session=;") || /^pwdless_session=[^;]*;.*Max-Age=0/i.test(c)),
    ).toBe(true);
    // the browser's old cookie (kept before signing out) no longer works, on A or on B
    for (const node of [a, b]) {
      await waitFor(`the session refused on ${node.port}`, async () => {
        const res = await visit(balancer.via(node), kept.clone(), "/account");
        return res.status === 302 && res.headers.get("location")!.startsWith("/login");
      });
    }
    const refresh = await token(balancer.via(b), refreshGrant(tokens.body.refresh_token));
    expect(refresh.body.error).toBe("invalid_grant");
  });
});
