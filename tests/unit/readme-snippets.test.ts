import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "../..");
const readme = readFileSync(path.join(root, "README.md"), "utf8");

/** The fenced code blocks of the README, as written between their fences. */
const blocks = [...readme.matchAll(/^```[\w-]*\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);

// The README's "Build your app on PwdlessGs" shows these files whole; the tests run the files
// (tests/integration/auth-door.test.ts, forward-auth.test.ts, tests/e2e/forward-auth.spec.ts).
const SHOWN = [
  "app/routes/examples.private.tsx",
  "app/routes/examples.welcome.tsx",
  "app/routes/api.examples.whoami.ts",
  "examples/forward-auth/nginx.conf",
  "examples/forward-auth/Caddyfile",
  "examples/forward-auth/traefik.yml",
];

describe("the README's snippets are the files the tests run", () => {
  it.each(SHOWN)("shows %s verbatim, in one code block", (file) => {
    const text = readFileSync(path.join(root, file), "utf8");
    expect(blocks).toContain(text);
  });
});
