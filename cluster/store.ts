import { compareStamps, HybridLogicalClock, type Stamp, type WallClock } from "./hlc";

/** How two versions of one key merge. Both are deterministic on every node. */
export type MergeRule =
  /** the greater (t, c, node) stamp wins: ordinary updates and deletes */
  | "last-writer-wins"
  /** the smaller stamp wins: a claim (e.g. "this email belongs to this user id") that the
   * earliest writer keeps; such keys are never deleted */
  | "first-writer-wins";

/** One versioned row as it travels between nodes. `value: null` is a tombstone. */
export interface RecordEnvelope {
  table: string;
  key: string;
  value: unknown;
  stamp: Stamp;
}

export interface Schema<V> {
  parse(input: unknown): V;
}

export interface TableOptions<V> {
  /** validates values arriving from peers (and local writes, in development) */
  schema?: Schema<V>;
  merge?: MergeRule;
}

export interface Change<V> {
  key: string;
  value: V | undefined;
  previous: V | undefined;
  origin: "local" | "remote";
}

export type ChangeListener<V> = (change: Change<V>) => void;

export interface Table<V> {
  readonly name: string;
  get(key: string): V | undefined;
  has(key: string): boolean;
  /** Write a value; returns false (and writes nothing) on a first-writer-wins table whose key is taken. */
  set(key: string, value: V): boolean;
  delete(key: string): void;
  scan(): IterableIterator<[string, V]>;
  readonly size: number;
  onChange(listener: ChangeListener<V>): () => void;
}

export type ApplyResult = "applied" | "stale" | "rejected";

/**
 * Where an applied record came from: this node's own write, a peer's live gossip (or the Redis
 * fan-out), a catch-up pull, or this node's own file read back at start.
 */
export type ApplyOrigin = "local" | "remote" | "sync" | "restore";

/** Told of every record the store applies, tombstones included (the persistence seam). */
export type AppliedListener = (record: RecordEnvelope, origin: ApplyOrigin) => void;

export interface StoreOptions {
  nodeId: string;
  clock?: WallClock;
  /** how long a delete's tombstone is kept before it may be collected */
  tombstoneTtlMs?: number;
  /** remote stamps further than this ahead of our wall clock are refused */
  maxClockSkewMs?: number;
}

export const TABLE_NAME = /^[a-z][a-zA-Z0-9_-]{0,39}$/;
export const MAX_KEY_LENGTH = 512;
export const DEFAULT_TOMBSTONE_TTL_MS = 7 * 24 * 60 * 60 * 1000;
export const DEFAULT_MAX_CLOCK_SKEW_MS = 60_000;
const MAX_UNCHECKED = 100_000;

interface Row {
  value: unknown;
  stamp: Stamp;
}

class TableState {
  readonly rows = new Map<string, Row>();
  readonly listeners = new Set<ChangeListener<unknown>>();
  live = 0;
  schema: Schema<unknown> | undefined;
  merge: MergeRule = "last-writer-wins";
  opened = false;
  /** keys applied from peers before the table had a schema: checked when it gets one */
  readonly unchecked = new Set<string>();
  /** too many to list (or a table that never gets a schema): then every row is checked */
  uncheckedAll = false;
  constructor(readonly name: string) {}
}

/**
 * The replicated tables of one node: every write is stamped with the node's hybrid logical
 * clock, applied here, and handed to the write listeners (the cluster node publishes them);
 * records from peers are merged with the same rule on every node, so all converge.
 */
export class ClusterStore {
  readonly nodeId: string;
  readonly clock: HybridLogicalClock;
  private readonly tables = new Map<string, TableState>();
  private readonly writeListeners = new Set<(record: RecordEnvelope) => void>();
  private readonly appliedListeners = new Set<AppliedListener>();
  private readonly tombstoneTtlMs: number;
  private readonly maxClockSkewMs: number;
  readonly counters = { localWrites: 0, remoteApplied: 0, remoteStale: 0, remoteRejected: 0 };
  private rowRevision = 0;

  constructor(options: StoreOptions) {
    this.nodeId = options.nodeId;
    this.clock = new HybridLogicalClock(options.nodeId, options.clock);
    this.tombstoneTtlMs = options.tombstoneTtlMs ?? DEFAULT_TOMBSTONE_TTL_MS;
    this.maxClockSkewMs = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  }

  table<V>(name: string, options: TableOptions<V> = {}): Table<V> {
    if (!TABLE_NAME.test(name)) throw new Error(`invalid table name: ${name}`);
    const state = this.state(name);
    if (!state.opened) {
      state.opened = true;
      state.merge = options.merge ?? "last-writer-wins";
    } else if (options.merge && options.merge !== state.merge) {
      throw new Error(`table ${name} is already open with merge rule ${state.merge}`);
    }
    // a table declared at start-up (for its merge rule) gets its schema when the app opens it
    if (options.schema && !state.schema) {
      state.schema = options.schema as Schema<unknown>;
      this.revalidate(state);
    }
    return this.view<V>(state);
  }

  /** Register a listener for every local write (the node publishes them to peers). */
  onLocalWrite(listener: (record: RecordEnvelope) => void): () => void {
    this.writeListeners.add(listener);
    return () => this.writeListeners.delete(listener);
  }

  /**
   * Register a listener for every record applied, whatever its origin (local writes, gossip,
   * catch-up, restore), with its stamp; stale and rejected records are not applied and not told.
   */
  onApplied(listener: AppliedListener): () => void {
    this.appliedListeners.add(listener);
    return () => this.appliedListeners.delete(listener);
  }

  /**
   * Merge a record received from elsewhere: a peer's gossip ("remote", the default), a catch-up
   * ("sync"), or this node's file at start ("restore"). Idempotent: the same record twice is stale.
   */
  applyRemote(record: RecordEnvelope, origin: Exclude<ApplyOrigin, "local"> = "remote"): ApplyResult {
    if (!this.acceptable(record)) {
      this.counters.remoteRejected += 1;
      return "rejected";
    }
    const state = this.state(record.table);
    let value = record.value;
    if (value !== null && state.schema) {
      try {
        value = state.schema.parse(value);
      } catch {
        this.counters.remoteRejected += 1;
        return "rejected";
      }
    } else if (value !== null && origin !== "restore") {
      // rows restored from this node's own file were checked when they first arrived
      if (state.unchecked.size < MAX_UNCHECKED) state.unchecked.add(record.key);
      else state.uncheckedAll = true;
    }
    this.clock.observe(record.stamp);
    const current = state.rows.get(record.key);
    if (current && !this.wins(state, record.stamp, current.stamp)) {
      this.counters.remoteStale += 1;
      return "stale";
    }
    this.put(state, record.key, { value, stamp: record.stamp }, "remote");
    this.counters.remoteApplied += 1;
    this.tellApplied({ table: record.table, key: record.key, value, stamp: record.stamp }, origin);
    return "applied";
  }

  /** Every row, tombstones included, of one table or of all: what a snapshot carries. */
  *records(table?: string): IterableIterator<RecordEnvelope> {
    for (const state of this.tables.values()) {
      if (table !== undefined && state.name !== table) continue;
      for (const [key, row] of state.rows) {
        yield { table: state.name, key, value: row.value, stamp: row.stamp };
      }
    }
  }

  /** The stamp held for a key, tombstones included. */
  stampOf(table: string, key: string): Stamp | undefined {
    return this.tables.get(table)?.rows.get(key)?.stamp;
  }

  /** Grows whenever any row (tombstones included) changes: lets the sync cache its digests. */
  get revision(): number {
    return this.rowRevision;
  }

  /** The merge rule a table was opened (or declared) with; a transport that stores rows elsewhere applies it there too. */
  mergeRule(table: string): MergeRule {
    return this.tables.get(table)?.merge ?? "last-writer-wins";
  }

  tableNames(): string[] {
    return [...this.tables.keys()];
  }

  /** Live rows per table (tombstones not counted). */
  sizes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const state of this.tables.values()) out[state.name] = state.live;
    return out;
  }

  /** Drop tombstones older than the safe period; returns how many were dropped. */
  collectTombstones(): number {
    const horizon = this.clock.wallNow() - this.tombstoneTtlMs;
    let dropped = 0;
    for (const state of this.tables.values()) {
      for (const [key, row] of state.rows) {
        if (row.value === null && row.stamp.t < horizon) {
          state.rows.delete(key);
          this.rowRevision += 1;
          dropped += 1;
        }
      }
    }
    return dropped;
  }

  private tellApplied(record: RecordEnvelope, origin: ApplyOrigin): void {
    for (const listener of this.appliedListeners) {
      try {
        listener(record, origin);
      } catch (error) {
        console.error("[cluster] applied-record listener failed", error);
      }
    }
  }

  private acceptable(record: RecordEnvelope): boolean {
    if (!TABLE_NAME.test(record.table)) return false;
    if (typeof record.key !== "string" || record.key.length === 0 || record.key.length > MAX_KEY_LENGTH) return false;
    const s = record.stamp;
    if (!s || !Number.isSafeInteger(s.t) || !Number.isSafeInteger(s.c) || s.t < 0 || s.c < 0) return false;
    if (typeof s.n !== "string" || s.n.length === 0 || s.n.length > 128) return false;
    if (s.t > this.clock.wallNow() + this.maxClockSkewMs) return false;
    return record.value !== undefined;
  }

  private wins(state: TableState, incoming: Stamp, current: Stamp): boolean {
    const order = compareStamps(incoming, current);
    return state.merge === "first-writer-wins" ? order < 0 : order > 0;
  }

  private state(name: string): TableState {
    let state = this.tables.get(name);
    if (!state) {
      state = new TableState(name);
      this.tables.set(name, state);
    }
    return state;
  }

  private revalidate(state: TableState): void {
    for (const key of state.uncheckedAll ? [...state.rows.keys()] : state.unchecked) {
      const row = state.rows.get(key);
      if (!row || row.value === null) continue;
      try {
        row.value = state.schema!.parse(row.value);
      } catch {
        state.rows.delete(key);
        state.live -= 1;
        this.rowRevision += 1;
        this.counters.remoteRejected += 1;
      }
    }
    state.unchecked.clear();
    state.uncheckedAll = false;
  }

  private put(state: TableState, key: string, row: Row, origin: "local" | "remote"): void {
    const before = state.rows.get(key);
    const previous = before?.value ?? undefined;
    state.rows.set(key, row);
    this.rowRevision += 1;
    if (before === undefined || before.value === null) {
      if (row.value !== null) state.live += 1;
    } else if (row.value === null) {
      state.live -= 1;
    }
    const value = row.value === null ? undefined : row.value;
    if (previous === undefined && value === undefined) return;
    for (const listener of state.listeners) {
      try {
        listener({ key, value, previous: previous === null ? undefined : previous, origin });
      } catch (error) {
        console.error(`[cluster] change listener of table ${state.name} failed`, error);
      }
    }
  }

  private writeLocal(state: TableState, key: string, value: unknown): boolean {
    if (key.length === 0 || key.length > MAX_KEY_LENGTH) throw new Error(`invalid key for table ${state.name}`);
    if (state.merge === "first-writer-wins") {
      if (value === null) throw new Error(`table ${state.name} keeps first writes: keys cannot be deleted`);
      if (state.rows.has(key)) return false;
    }
    const stamp = this.clock.now();
    this.put(state, key, { value, stamp }, "local");
    this.counters.localWrites += 1;
    const record: RecordEnvelope = { table: state.name, key, value, stamp };
    this.tellApplied(record, "local");
    for (const listener of this.writeListeners) {
      try {
        listener(record);
      } catch (error) {
        console.error("[cluster] write listener failed", error);
      }
    }
    return true;
  }

  private view<V>(state: TableState): Table<V> {
    const store = this;
    return {
      name: state.name,
      get(key) {
        const row = state.rows.get(key);
        return row && row.value !== null ? (row.value as V) : undefined;
      },
      has(key) {
        const row = state.rows.get(key);
        return !!row && row.value !== null;
      },
      set(key, value) {
        return store.writeLocal(state, key, value);
      },
      delete(key) {
        const row = state.rows.get(key);
        if (!row || row.value === null) return;
        store.writeLocal(state, key, null);
      },
      *scan() {
        for (const [key, row] of state.rows) if (row.value !== null) yield [key, row.value as V];
      },
      get size() {
        return state.live;
      },
      onChange(listener) {
        state.listeners.add(listener as ChangeListener<unknown>);
        return () => state.listeners.delete(listener as ChangeListener<unknown>);
      },
    };
  }
}
