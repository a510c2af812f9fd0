// The OpenID provider in Redis mode: two nodes meeting in a real redis-server behind one balancer.
// Single use is Redis's to decide, so a raced code has one winner and any node can redeem anything.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Balancer } from "../support/balancer";
import { CookieJar } from "../support/cookie-jar";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { clientsFile, codeFlow, standardClients, token, userinfo } from "../support/oidc";
import { redisClusterEnv, startRedisServer, stopRedisServers } from "../support/redis";
import { TestSmtpServer } from "../support/smtp";
import { waitFor } from "../support/wait";

describe("Sign in with PwdlessGs in Redis mode", () => {
  let smtp: TestSmtpServer;
  let balancer: Balancer;
  let a: NodeProcess;
  let b: NodeProcess;

  beforeAll(async () => {
    smtp = await new TestSmtpServer().start();
    balancer = await Balancer.start();
    const redis = await startRedisServer();
    const env = {
      ...redisClusterEnv(redis),
      APP_URL: balancer.url,
      SMTP_URL: smtp.url,
      OIDC_PROVIDER_CLIENTS_FILE: clientsFile(standardClients()),
    };
    a = await startNode({ env });
    b = await startNode({ env });
    await waitFor(
      "both nodes loaded from Redis",
      async () => (await a.fetch("/readyz")).ok && (await b.fetch("/readyz")).ok,
      30_000,
    );
    balancer.route(a);
  });

  afterAll(async () => {
    await stopAllNodes();
    await stopRedisServers();
    await balancer.stop();
    await smtp.stop();
  });

  it("the same code exchanged on A and B at once: exactly one gets tokens", async () => {
    const jar = new CookieJar();
    for (const issuer of [a, b, a]) {
      balancer.route(issuer);
      const { code, verifier, redirectUri } = await codeFlow(balancer, jar, { email: "redis-race@example.com", smtp });
      const fields = { grant_type: "authorization_code", code, code_verifier: verifier, redirect_uri: redirectUri };
      const answers = await Promise.all([token(balancer.via(a), fields), token(balancer.via(b), fields)]);
      expect(answers.map((x) => x.status).sort(), JSON.stringify(answers.map((x) => x.body))).toEqual([200, 400]);
    }
  });

  it("a refresh token rotated on A and replayed on B revokes the family on both", async () => {
    const jar = new CookieJar();
    balancer.route(b);
    const { code, verifier, redirectUri } = await codeFlow(balancer, jar, { email: "redis-family@example.com", smtp });
    const first = await token(balancer.via(b), {
      grant_type: "authorization_code",
      code,
      code_verifier: verifier,
      redirect_uri: redirectUri,
    });
    const second = await token(balancer.via(a), {
      grant_type: "refresh_token",
      refresh_token: String(first.body.refresh_token),
    });
    expect(second.status).toBe(200);
    const replay = await token(balancer.via(b), {
      grant_type: "refresh_token",
      refresh_token: String(first.body.refresh_token),
    });
    expect(replay.body.error).toBe("invalid_grant");
    for (const node of [a, b]) {
      await waitFor(
        `the family refused on ${node.port}`,
        async () => (await userinfo(balancer.via(node), String(second.body.access_token))).status === 401,
      );
    }
    const latest = await token(balancer.via(a), {
      grant_type: "refresh_token",
      refresh_token: String(second.body.refresh_token),
    });
    expect(latest.body.error).toBe("invalid_grant");
  });
});
