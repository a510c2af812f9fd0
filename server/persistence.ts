/** Which persistence the gossip node starts: the tables files in DATA_DIR, or none (benchmarks). */
import { filePersistence, type Persistence } from "#cluster";
import type { Config } from "./config";

export function persistenceFor(config: Config): Persistence | undefined {
  if (config.persistence.mode === "off") return undefined;
  return filePersistence({
    dir: config.dataDir,
    clusterName: config.cluster.name,
    maxBytes: config.persistence.maxBytes,
    // old tombstones leave the file at least twice per horizon
    maintenanceMs: Math.min(10 * 60_000, Math.max(500, Math.floor(config.tombstoneHorizonMs / 2))),
  });
}
