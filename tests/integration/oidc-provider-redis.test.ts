// The OpenID provider in Redis mode: two nodes meeting in a real redis-server behind one balancer.
// Single use is Redis's to decide, so a raced code has one winner and any node can redeem anything.
import { afterAll, beforeAll, describe, it } from "vitest";
import { Balancer } from "../support/balancer";
import { racedCodesHaveOneWinner, replayRevokesFamily } from "../support/oidc-journeys";
import { startNode, stopAllNodes, type NodeProcess } from "../support/node";
import { clientsFile, standardClients } from "../support/oidc";
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
    await racedCodesHaveOneWinner(balancer, [a, b], [a, b, a], { email: "redis-race@example.com", smtp });
  });

  it("a refresh token rotated on A and replayed on B revokes the family on both", async () => {
    await replayRevokesFamily(
      balancer,
      { issueOn: b, rotateOn: a, replayOn: b, nodes: [a, b] },
      { email: "redis-family@example.com", smtp },
    );
  });
});
