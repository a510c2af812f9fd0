// What an app and an attacker do against a provider cluster, shared by the gossip and Redis tests.
import { expect } from "vitest";
import type { Balancer } from "./balancer";
import { CookieJar } from "./cookie-jar";
import type { NodeProcess } from "./node";
import { codeFlow, codeGrant, refreshGrant, token, userinfo } from "./oidc";
import type { TestSmtpServer } from "./smtp";
import { waitFor } from "./wait";

/** Codes issued on each of `issuers` in turn, each exchanged on A and B at the same moment: one winner each. */
export async function racedCodesHaveOneWinner(
  balancer: Balancer,
  [a, b]: [NodeProcess, NodeProcess],
  issuers: NodeProcess[],
  signIn: { email: string; smtp: TestSmtpServer },
): Promise<void> {
  for (const [i, issuer] of issuers.entries()) {
    balancer.route(issuer);
    // a browser and a person of their own each time: a race revokes the family its code belongs to
    const person = { ...signIn, email: `race${i}-${signIn.email}` };
    const fields = codeGrant(await codeFlow(balancer, new CookieJar(), person));
    const answers = await Promise.all([token(balancer.via(a), fields), token(balancer.via(b), fields)]);
    const statuses = answers.map((x) => x.status).sort();
    expect(statuses, JSON.stringify(answers.map((x) => x.body))).toEqual([200, 400]);
    expect(answers.find((x) => x.status === 400)!.body.error).toBe("invalid_grant");
  }
}

/**
 * A family issued on `issueOn`, rotated on `rotateOn`, its old refresh token replayed on `replayOn`
 * (as a thief with a copy would): every node refuses the family's newest tokens too.
 */
export async function replayRevokesFamily(
  balancer: Balancer,
  {
    issueOn,
    rotateOn,
    replayOn,
    nodes,
  }: Record<"issueOn" | "rotateOn" | "replayOn", NodeProcess> & { nodes: NodeProcess[] },
  signIn: { email: string; smtp: TestSmtpServer },
): Promise<void> {
  balancer.route(issueOn);
  const first = await token(balancer.via(issueOn), codeGrant(await codeFlow(balancer, new CookieJar(), signIn)));
  const second = await token(balancer.via(rotateOn), refreshGrant(first.body.refresh_token));
  expect(second.status).toBe(200);
  const replay = await token(balancer.via(replayOn), refreshGrant(first.body.refresh_token));
  expect(replay.body.error).toBe("invalid_grant");
  // a read, so nothing rotates while the revocation travels
  for (const node of nodes) {
    await waitFor(
      `the family refused on ${node.port}`,
      async () => (await userinfo(balancer.via(node), String(second.body.access_token))).status === 401,
    );
  }
  for (const node of nodes) {
    expect((await token(balancer.via(node), refreshGrant(second.body.refresh_token))).body.error).toBe("invalid_grant");
  }
}
