/**
 * The cluster library's one public door. Callers get tables and a status snapshot;
 * libp2p types never leave this folder.
 */
export { ClusterStore } from "./store";
export type {
  AppliedListener,
  ApplyOrigin,
  ApplyResult,
  Change,
  ChangeListener,
  MergeRule,
  RecordEnvelope,
  Schema,
  StoreOptions,
  Table,
  TableOptions,
} from "./store";
export { compareStamps, HybridLogicalClock } from "./hlc";
export { indexTable } from "./table-index";
export type { TableIndex } from "./table-index";
export type { Stamp, WallClock } from "./hlc";
export { startCluster } from "./node";
export { ClusterRequestError } from "./rpc";
export { ClusterUnavailableError } from "./errors";
export { RedisStartError } from "./redis/errors";
export { LocalAtomics } from "./transport";
export type { ClusterAtomics, Reservation, TransportKind } from "./transport";
export { filePersistence, FilePersistence } from "./persistence/file";
export type { FilePersistenceOptions, MaintenanceResult } from "./persistence/file";
export {
  acceptTablesFile,
  backupTablesFile,
  FORMAT_VERSION,
  LAST_CONTACT_KEY,
  writeTablesFile,
} from "./persistence/sqlite";
export { PersistenceError, staleFileProblem } from "./persistence/types";
export type { Persistence, PersistenceContext, PersistenceProblem, RestoreResult } from "./persistence/types";
export type { RequestErrorCode } from "./rpc";
export type {
  Cluster,
  ClusterConfig,
  ClusterCounters,
  ClusterStatus,
  ClusterTimings,
  DiscoveryMode,
  Logger,
  PeerStatus,
  RedisAddress,
  RedisSettings,
  RedisStatus,
  RedisTimings,
  RequestHandler,
  StartClusterOptions,
} from "./types";
