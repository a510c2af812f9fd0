import { BUCKETS, hashOut, nodeHash, versionHash, WORDS_PER_BUCKET, type TableDigest } from "./digest";
import { HybridLogicalClock, type Stamp, type WallClock } from "./hlc";
import { fnv1a, KeyIndex } from "./key-index";

/** How two versions of one key merge. Both are deterministic on every node. */
export type MergeRule =
  /** the greater (t, c, node) stamp wins: ordinary updates and deletes */
  | "last-writer-wins"
  /** the smaller stamp wins: a claim (e.g. "this email belongs to this user id") that the
   * earliest writer keeps. A claim can be released (deleted); a claim written over a release
   * carries `after` (the release's time) and beats every claim made before it: see `claimOrder` */
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
  /**
   * String fields of a value to hold once instead of once per row: `"shared"` for a small
   * vocabulary (node ids, sign-in methods, user agents), `{ keyOf: table }` for a field that names
   * a key of that table (a session's user id). A field equal to the row's own key always shares it.
   */
  strings?: Record<string, "shared" | { keyOf: string }>;
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
  /**
   * Write a value; returns false (and writes nothing) on a first-writer-wins table whose key is
   * claimed. A first-writer-wins key that was released (deleted) is claimed again with the value
   * given plus `after`, the release's time: the value must be an object.
   */
  set(key: string, value: V): boolean;
  delete(key: string): void;
  scan(): IterableIterator<[string, V]>;
  readonly size: number;
  onChange(listener: ChangeListener<V>): () => void;
}

/** One row as the catch-up reads it (see `cursorInBuckets`). */
export interface RowCursor {
  key: string;
  value: unknown;
  t: number;
  c: number;
  n: string;
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

/** at most this many distinct "shared" strings are pooled; beyond it they are simply kept */
const MAX_SHARED_STRINGS = 65_536;
/** at most this many referenced keys wait for their row (see `share`) */
const MAX_PENDING_KEYS = 1 << 21;
const EMPTY_ARRAY: readonly unknown[] = Object.freeze([]);

/**
 * One table's rows in columns: key → slot, and per slot the key, the value (one copy; `null` is
 * a tombstone) and the stamp as numbers (t, c, the writer as an index into the store's node ids).
 * Typed columns cost ~22 bytes a row where a `{value, stamp: {t, c, n}}` object pair cost ~100.
 */
class TableState {
  /** key → slot; also each slot's key and key hash (whose low bits are its digest bucket) */
  readonly index = new KeyIndex();
  values: unknown[] = [];
  t = new Float64Array(64);
  c = new Float64Array(64);
  n = new Uint32Array(64);
  /** 1 where the value was stored before the table had a schema */
  unchecked = new Uint8Array(64);
  uncheckedCount = 0;
  free: number[] = [];
  used = 0;
  /** running digest: XOR of every row's version hash, per bucket */
  readonly digest = new Uint32Array(BUCKETS * WORDS_PER_BUCKET);
  count = 0;
  live = 0;
  readonly listeners = new Set<ChangeListener<unknown>>();
  schema: Schema<unknown> | undefined;
  merge: MergeRule = "last-writer-wins";
  strings: TableOptions<unknown>["strings"];
  opened = false;
  constructor(readonly name: string) {}

  allocate(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    if (this.used === this.t.length) this.grow(this.t.length * 2);
    return this.used++;
  }

  private grow(size: number): void {
    const grow = <A extends Float64Array | Uint32Array | Uint16Array | Uint8Array>(a: A, make: (n: number) => A) => {
      const next = make(size);
      next.set(a);
      return next;
    };
    this.t = grow(this.t, (n) => new Float64Array(n));
    this.c = grow(this.c, (n) => new Float64Array(n));
    this.n = grow(this.n, (n) => new Uint32Array(n));
    this.index.reserve(size);
    this.unchecked = grow(this.unchecked, (n) => new Uint8Array(n));
  }

  /** XOR a slot's version hash into (or out of) the running digest. */
  toggleDigest(slot: number, node: number): void {
    versionHash(this.index.keys[slot]!, this.t[slot], this.c[slot], node);
    const b = (this.index.hashes[slot] % BUCKETS) * WORDS_PER_BUCKET;
    this.digest[b] ^= hashOut[0];
    this.digest[b + 1] ^= hashOut[1];
  }
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
  /** writer ids, each held once; stamps keep an index */
  private readonly nodeIds: string[] = [];
  private readonly nodeHashes: number[] = [];
  private readonly nodeIndex = new Map<string, number>();
  private readonly shared = new Map<string, string>();
  /** keys named by `keyOf` fields before their own row arrived (a snapshot's claims before its users) */
  private readonly pendingKeys = new Map<string, string>();

  constructor(options: StoreOptions) {
    this.nodeId = options.nodeId;
    this.clock = new HybridLogicalClock(options.nodeId, options.clock);
    this.tombstoneTtlMs = options.tombstoneTtlMs ?? DEFAULT_TOMBSTONE_TTL_MS;
    this.maxClockSkewMs = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
    this.nodeOf(options.nodeId);
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
    if (options.strings && !state.strings) state.strings = options.strings;
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
    const { t, c, n } = record.stamp;
    const found = state.index.find(record.key);
    const slot = found < 0 ? undefined : found;
    // a stale version is dropped before its value is validated: duplicates cost a lookup
    if (slot !== undefined && !this.wins(state, t, c, n, slot, record.value)) {
      this.clock.observe(record.stamp);
      this.counters.remoteStale += 1;
      return "stale";
    }
    let value = record.value;
    if (value !== null && state.schema) {
      try {
        value = state.schema.parse(value);
      } catch {
        this.counters.remoteRejected += 1;
        return "rejected";
      }
    }
    this.clock.observe(record.stamp);
    // rows restored from this node's own file were checked when they first arrived
    const stored = this.put(state, record.key, value, t, c, this.nodeOf(n), "remote", origin === "restore");
    this.counters.remoteApplied += 1;
    if (this.appliedListeners.size > 0) {
      this.tellApplied({ table: record.table, key: record.key, value: stored, stamp: { t, c, n } }, origin);
    }
    return "applied";
  }

  /** Every row, tombstones included, of one table or of all: what a snapshot carries. */
  *records(table?: string): IterableIterator<RecordEnvelope> {
    for (const state of this.tables.values()) {
      if (table !== undefined && state.name !== table) continue;
      for (let slot = 0; slot < state.used; slot += 1) {
        if (state.index.keys[slot] !== undefined) yield this.recordAt(state, slot);
      }
    }
  }

  /**
   * The rows of the given buckets of a table, bucket by bucket (so a pull cut short leaves whole
   * buckets behind it, which the next digest shows as equal). The order is fixed when iteration
   * starts; rows removed meanwhile are skipped.
   */
  *recordsInBuckets(table: string, buckets: ReadonlySet<number>): IterableIterator<RecordEnvelope> {
    const state = this.tables.get(table);
    if (!state) return;
    for (const slot of this.slotsInBuckets(state, buckets)) {
      if (state.index.keys[slot] !== undefined) yield this.recordAt(state, slot);
    }
  }

  /**
   * `recordsInBuckets` without an object per row, for the catch-up's hot loop: yields one reused
   * cursor whose fields hold the current row (read them before the next step).
   */
  *cursorInBuckets(table: string, buckets: ReadonlySet<number>): IterableIterator<RowCursor> {
    const state = this.tables.get(table);
    if (!state) return;
    const cursor: RowCursor = { key: "", value: null, t: 0, c: 0, n: "" };
    for (const slot of this.slotsInBuckets(state, buckets)) {
      const key = state.index.keys[slot];
      if (key === undefined) continue;
      cursor.key = key;
      cursor.value = state.values[slot];
      cursor.t = state.t[slot];
      cursor.c = state.c[slot];
      cursor.n = this.nodeIds[state.n[slot]];
      yield cursor;
    }
  }

  /** Slots of the wanted buckets, grouped by bucket: a counting sort over the bucket column. */
  private slotsInBuckets(state: TableState, buckets: ReadonlySet<number>): Uint32Array {
    const wanted = new Uint8Array(BUCKETS);
    for (const b of buckets) wanted[b] = 1;
    const starts = new Uint32Array(BUCKETS + 1);
    const { keys, hashes } = state.index;
    for (let slot = 0; slot < state.used; slot += 1) {
      if (keys[slot] !== undefined && wanted[hashes[slot] % BUCKETS]) starts[(hashes[slot] % BUCKETS) + 1] += 1;
    }
    for (let b = 0; b < BUCKETS; b += 1) starts[b + 1] += starts[b];
    const order = new Uint32Array(starts[BUCKETS]);
    const fill = starts.slice(0, BUCKETS);
    for (let slot = 0; slot < state.used; slot += 1) {
      if (keys[slot] !== undefined && wanted[hashes[slot] % BUCKETS]) order[fill[hashes[slot] % BUCKETS]++] = slot;
    }
    return order;
  }

  /** The running digest of a table (live: copy it to keep it). */
  digestOf(table: string): TableDigest {
    const state = this.tables.get(table);
    return state ? { count: state.count, buckets: state.digest } : { count: 0, buckets: new Uint32Array(BUCKETS * 2) };
  }

  /** The stamp held for a key, tombstones included. */
  stampOf(table: string, key: string): Stamp | undefined {
    const state = this.tables.get(table);
    const slot = state ? state.index.find(key) : -1;
    if (state === undefined || slot < 0) return undefined;
    return { t: state.t[slot], c: state.c[slot], n: this.nodeIds[state.n[slot]] };
  }

  /** Grows whenever any row (tombstones included) changes. */
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
      // a pass over typed columns, not over row objects: a few ms per million rows
      for (let slot = 0; slot < state.used; slot += 1) {
        if (state.index.keys[slot] !== undefined && state.values[slot] === null && state.t[slot] < horizon) {
          this.remove(state, slot);
          dropped += 1;
        }
      }
    }
    return dropped;
  }

  private recordAt(state: TableState, slot: number): RecordEnvelope {
    return {
      table: state.name,
      key: state.index.keys[slot]!,
      value: state.values[slot],
      stamp: { t: state.t[slot], c: state.c[slot], n: this.nodeIds[state.n[slot]] },
    };
  }

  private remove(state: TableState, slot: number): void {
    state.toggleDigest(slot, this.nodeHashes[state.n[slot]]);
    if (state.values[slot] !== null) state.live -= 1;
    if (state.unchecked[slot]) {
      state.unchecked[slot] = 0;
      state.uncheckedCount -= 1;
    }
    state.index.remove(slot);
    state.values[slot] = undefined;
    state.free.push(slot);
    state.count -= 1;
    this.rowRevision += 1;
  }

  private nodeOf(id: string): number {
    let index = this.nodeIndex.get(id);
    if (index === undefined) {
      index = this.nodeIds.length;
      this.nodeIds.push(id);
      this.nodeHashes.push(nodeHash(id));
      this.nodeIndex.set(id, index);
    }
    return index;
  }

  /** The same string instance as `s`, from the pool or a table's keys, so equal strings are held once. */
  private share(s: string, how: "shared" | { keyOf: string }): string {
    if (how === "shared") {
      const pooled = this.shared.get(s);
      if (pooled !== undefined) return pooled;
      if (this.shared.size < MAX_SHARED_STRINGS) this.shared.set(s, s);
      return s;
    }
    const other = this.tables.get(how.keyOf);
    const slot = other ? other.index.find(s) : -1;
    if (slot >= 0) return other!.index.keys[slot] ?? s;
    // the row may come later: it will then take this very string as its key
    const pending = this.pendingKeys.get(s);
    if (pending !== undefined) return pending;
    if (this.pendingKeys.size < MAX_PENDING_KEYS) this.pendingKeys.set(s, s);
    return s;
  }

  /** Replace a value's string fields by held instances of equal strings (invisible to readers). */
  private compact(state: TableState, key: string, value: unknown): unknown {
    if (typeof value === "string") return value === key ? key : value;
    if (typeof value !== "object" || value === null || Array.isArray(value) || Object.isFrozen(value)) return value;
    const fields = value as Record<string, unknown>;
    for (const field in fields) {
      const v = fields[field];
      if (typeof v === "string") {
        if (v === key) fields[field] = key;
        else {
          const how = state.strings?.[field];
          if (how !== undefined) fields[field] = this.share(v, how);
        }
      } else if (Array.isArray(v) && v.length === 0) {
        // values are replaced, never mutated, by their owners: an empty list can be one list
        fields[field] = EMPTY_ARRAY;
      }
    }
    return value;
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

  /** Does the version (t, c, n) of `value` beat the one held in `slot`, by the table's rule? */
  private wins(state: TableState, t: number, c: number, n: string, slot: number, value: unknown): boolean {
    let order: number;
    if (t !== state.t[slot]) order = t < state.t[slot] ? -1 : 1;
    else if (c !== state.c[slot]) order = c < state.c[slot] ? -1 : 1;
    else {
      const held = this.nodeIds[state.n[slot]];
      order = n === held ? 0 : n < held ? -1 : 1;
    }
    if (state.merge !== "first-writer-wins") return order > 0;
    return claimOrder(value, t, order, state.values[slot], state.t[slot]) > 0;
  }

  private state(name: string): TableState {
    let state = this.tables.get(name);
    if (!state) {
      state = new TableState(name);
      this.tables.set(name, state);
    }
    return state;
  }

  /** Validate the rows stored before the table had a schema (only those: usually none). */
  private revalidate(state: TableState): void {
    if (state.uncheckedCount === 0) return;
    for (let slot = 0; slot < state.used; slot += 1) {
      if (!state.unchecked[slot]) continue;
      state.unchecked[slot] = 0;
      state.uncheckedCount -= 1;
      const key = state.index.keys[slot]!;
      try {
        state.values[slot] = this.compact(state, key, state.schema!.parse(state.values[slot]));
      } catch {
        this.remove(state, slot);
        this.counters.remoteRejected += 1;
      }
    }
  }

  /** Store a version; returns the value as held. */
  private put(
    state: TableState,
    key: string,
    value: unknown,
    t: number,
    c: number,
    node: number,
    origin: "local" | "remote",
    trusted = false,
  ): unknown {
    const hash = fnv1a(key);
    let slot = state.index.find(key, hash);
    let previous: unknown = undefined;
    if (slot < 0) {
      slot = state.allocate();
      if (this.pendingKeys.size > 0) {
        const pending = this.pendingKeys.get(key);
        if (pending !== undefined) {
          this.pendingKeys.delete(key);
          key = pending;
        }
      }
      state.index.insert(key, slot, hash);
      state.values[slot] = null;
      state.count += 1;
    } else {
      previous = state.values[slot];
      state.toggleDigest(slot, this.nodeHashes[state.n[slot]]);
    }
    const heldKey = state.index.keys[slot]!;
    const held = value === null ? null : this.compact(state, heldKey, value);
    state.values[slot] = held;
    state.t[slot] = t;
    state.c[slot] = c;
    state.n[slot] = node;
    state.toggleDigest(slot, this.nodeHashes[node]);
    const unchecked = held !== null && !state.schema && !trusted ? 1 : 0;
    state.uncheckedCount += unchecked - state.unchecked[slot];
    state.unchecked[slot] = unchecked;
    this.rowRevision += 1;
    const wasLive = previous !== undefined && previous !== null;
    if (!wasLive && held !== null) state.live += 1;
    else if (wasLive && held === null) state.live -= 1;
    if (!wasLive && held === null) return held;
    const change = {
      key: heldKey,
      value: held === null ? undefined : held,
      previous: wasLive ? previous : undefined,
      origin,
    };
    for (const listener of state.listeners) {
      try {
        listener(change);
      } catch (error) {
        console.error(`[cluster] change listener of table ${state.name} failed`, error);
      }
    }
    return held;
  }

  private writeLocal(state: TableState, key: string, value: unknown): boolean {
    if (key.length === 0 || key.length > MAX_KEY_LENGTH) throw new Error(`invalid key for table ${state.name}`);
    if (state.merge === "first-writer-wins" && value !== null) {
      const slot = state.index.find(key);
      if (slot >= 0) {
        if (state.values[slot] !== null) return false;
        // claimed again after a release: the claim says which release it follows (see claimOrder)
        if (typeof value !== "object" || Array.isArray(value)) {
          throw new Error(`table ${state.name}: a released key is claimed again with an object value`);
        }
        value = { ...(value as Record<string, unknown>), after: state.t[slot] };
      }
    }
    const stamp = this.clock.now();
    const held = this.put(state, key, value, stamp.t, stamp.c, this.nodeOf(stamp.n), "local");
    this.counters.localWrites += 1;
    const record: RecordEnvelope = { table: state.name, key, value: held, stamp };
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
        const slot = state.index.find(key);
        if (slot < 0) return undefined;
        const value = state.values[slot];
        return value === null ? undefined : (value as V);
      },
      has(key) {
        const slot = state.index.find(key);
        return slot >= 0 && state.values[slot] !== null;
      },
      set(key, value) {
        return store.writeLocal(state, key, value);
      },
      delete(key) {
        const slot = state.index.find(key);
        if (slot < 0 || state.values[slot] === null) return;
        store.writeLocal(state, key, null);
      },
      *scan() {
        const { keys } = state.index;
        for (let slot = 0; slot < state.used; slot += 1) {
          const key = keys[slot];
          const value = state.values[slot];
          if (key !== undefined && value !== null) yield [key, value as V];
        }
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

/** The release epoch of a first-writer-wins version: a release starts one at its time; a claim belongs to the one it follows. */
export function releaseEpoch(record: RecordEnvelope): number {
  return epochOf(record.value, record.stamp.t);
}

function epochOf(value: unknown, t: number): number {
  if (value === null) return t;
  const after = typeof value === "object" && value !== null ? (value as { after?: unknown }).after : undefined;
  return typeof after === "number" ? after : 0;
}

/**
 * First-writer-wins with releases, as one total order (so every node converges whatever the
 * arrival order): the later release epoch wins; within an epoch a claim beats the release it
 * follows, the earlier of two claims wins, and the later of two releases. `order` is the
 * incoming stamp against the held one (-1, 0, 1). Positive: the incoming version wins.
 * Without releases every epoch is 0 and this is plain "the smaller stamp wins".
 */
export function claimOrder(incoming: unknown, t: number, order: number, held: unknown, heldT: number): number {
  const inEpoch = epochOf(incoming, t);
  const heldEpoch = epochOf(held, heldT);
  if (inEpoch !== heldEpoch) return inEpoch > heldEpoch ? 1 : -1;
  const inClaim = incoming !== null;
  if (inClaim !== (held !== null)) return inClaim ? 1 : -1;
  return inClaim ? -order : order;
}
