import { afterAll, describe, expect, it } from "vitest";
import { CookieJar } from "../support/cookie-jar";
import { requestLink } from "../support/flows";
import { startNode, stopAllNodes } from "../support/node";

afterAll(stopAllNodes);

type Mailbox = { messages: { to: string; subject: string; text: string; sentAt: string }[] };

describe("/dev/mailbox.json", () => {
  it("lists every mail newest first, one address's with ?to=, and shows a new mail at once", async () => {
    const node = await startNode();
    const read = async (query = "") => {
      const res = await node.fetch(`/dev/mailbox.json${query}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("application/json");
      expect(res.headers.get("cache-control")).toBe("no-store");
      return (await res.json()) as Mailbox;
    };
    await requestLink(node, new CookieJar(), "first@example.com");
    await requestLink(node, new CookieJar(), "second@example.com");
    // read twice: the second answer comes from the kept serialisation and must be the same
    const all = await read();
    expect(await read()).toEqual(all);
    expect(all.messages.map((m) => m.to)).toEqual(["second@example.com", "first@example.com"]);
    expect((await read("?to=first%40example.com")).messages.map((m) => m.to)).toEqual(["first@example.com"]);
    expect((await read("?to=nobody%40example.com")).messages).toEqual([]);

    // a new mail invalidates what was kept
    await requestLink(node, new CookieJar(), "third@example.com");
    expect((await read()).messages.map((m) => m.to)).toEqual([
      "third@example.com",
      "second@example.com",
      "first@example.com",
    ]);
  });
});
