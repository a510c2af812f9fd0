/**
 * `npm run build`, second half: bundles server/ and cluster/ into build/node/index.js with Vite
 * (already the app's build tool), so `npm start` runs compiled JavaScript instead of transpiling
 * TypeScript at every start. Packages stay external: Node loads them from node_modules as usual.
 * The worker thread that reads the tables files at start is a second entry, restore-worker.js,
 * beside index.js (cluster/persistence/file.ts looks for it there); shared code goes in chunks
 * beside them.
 */
import { build } from "vite";

await build({
  configFile: false,
  logLevel: "warn",
  publicDir: false,
  build: {
    ssr: true,
    outDir: "build/node",
    emptyOutDir: true,
    target: "node22",
    // unminified: a stack trace in a log names the functions and lines one can find in server/
    minify: false,
    rollupOptions: {
      input: { index: "server/index.ts", "restore-worker": "cluster/persistence/restore-worker.ts" },
      output: { format: "es", entryFileNames: "[name].js", chunkFileNames: "[name]-[hash].js" },
    },
  },
});
