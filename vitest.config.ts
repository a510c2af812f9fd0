import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { alias: { "~": new URL("./app", import.meta.url).pathname } },
  test: {
    // integration files each start their own server processes: one file at a time on two cores
    fileParallelism: false,
    projects: [
      {
        resolve: { alias: { "~": new URL("./app", import.meta.url).pathname } },
        test: { name: "unit", include: ["tests/unit/**/*.test.ts"], testTimeout: 30_000 },
      },
      {
        resolve: { alias: { "~": new URL("./app", import.meta.url).pathname } },
        test: {
          name: "integration",
          include: ["tests/integration/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
