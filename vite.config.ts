import { vitePlugin as remix } from "@remix-run/dev";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [
    remix({
      future: {
        v3_fetcherPersist: true,
        v3_relativeSplatPath: true,
        v3_throwAbortReason: true,
        v3_lazyRouteDiscovery: true,
        // Off on purpose (decision 013): single fetch changes the data-request protocol (`.data`
        // URLs, turbo-stream bodies) that server/http.ts's request checks, the metrics' route
        // labels and the fast API path rely on; it comes with the move to React Router 7.
        v3_singleFetch: false,
      },
    }),
  ],
  build: {
    rollupOptions: {
      onwarn(warning, warn) {
        // resource routes (JSON, CSS, POST-only) have no component: their client chunk is empty by design
        if (warning.code === "EMPTY_BUNDLE") return;
        warn(warning);
      },
    },
  },
  resolve: { alias: { "~": new URL("./app", import.meta.url).pathname } },
  server: { host: "127.0.0.1" },
});
