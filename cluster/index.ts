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
export type { ValueSpec } from "./value-check";
export { compareStamps, HybridLogicalClock } from "./hlc";
export { indexTable } from "./table-index";
export type { TableIndex } from "./table-index";
export type { Stamp, WallClock } from "./hlc";
export { startCluster } from "./node";
export { ClusterRequestError } from "./rpc";
export { ClusterUnavailableError } from "./errors";
export { DEFAULT_ACK_SETTINGS } from "./copies";
export type { AckCounters, AckSettings, AckStatus } from "./copies";
export { RedisStartError } from "./redis/errors";
export { LocalAtomics } from "./transport";
export type { ClusterAtomics, Reservation, TransportKind } from "./transport";
export { filePersistence, FilePersistence } from "./persistence/file";
export type { FilePersistenceOptions, MaintenanceResult } from "./persistence/file";
export { acceptTablesFiles, backupTables } from "./persistence/backup";
export { ACCEPTED_FILE, SNAPSHOT_FILE, FORMAT_1_FILE, logFileName } from "./persistence/chain";
export { LAST_CONTACT_KEY, writeTablesFile } from "./persistence/sqlite";
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
