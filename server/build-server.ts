/**
 * `npm run build`, second half: bundles server/ and cluster/ into build/node/index.js with Vite
 * (already the app's build tool), so `npm start` runs compiled JavaScript instead of transpiling
 * TypeScript at every start. Packages stay external: Node loads them from node_modules as usual.
 */
import { build } from "vite";

await build({
  configFile: false,
  logLevel: "warn",
  publicDir: false,
  build: {
    ssr: "server/index.ts",
    outDir: "build/node",
    emptyOutDir: true,
    target: "node22",
    // unminified: a stack trace in a log names the functions and lines one can find in server/
    minify: false,
    rollupOptions: { output: { format: "es", entryFileNames: "index.js" } },
  },
});
