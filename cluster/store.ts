import { Arena, type ArenaState } from "./arena";
import {
  ByteWriter,
  CodecError,
  cursor,
  decodeValue,
  Dictionary,
  encodeValue,
  fieldAt,
  KEY_TAG,
  keyLengthAt,
  keyUnitsAt,
  keyUnitsOfString,
  NULL_TAG,
  readString,
  readVarint,
  sameBytes,
  skipString,
  stringUnitsAt,
  transcodeValue,
} from "./codec";
import { BUCKETS, hashOut, nodeHash, versionHashUnits, WORDS_PER_BUCKET, type TableDigest } from "./digest";
import { HybridLogicalClock, type Stamp, type WallClock } from "./hlc";
import { fnv1a, fnv1aUnits, KeyIndex, type KeySource } from "./key-index";
import { SlotMultimap, termHash, termHashUnits } from "./slot-multimap";
import { compileSpec, type BytesCheck, type ValueSpec } from "./value-check";

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
  /**
   * A fast path for catch-up, optional: true only when `parse(input)` would succeed and return a
   * value equal to `input` (no default filled in, no field dropped). Rows it passes are kept as
   * they came; the others go through `parse`.
   */
  check?(input: unknown): boolean;
  /**
   * Optional, the fastest path: what `parse` accepts unchanged, as data. Rows that arrive in the
   * binary form (a catch-up) are then checked in that form, with nothing built.
   */
  binarySpec?(): ValueSpec;
}

export interface TableOptions<V> {
  /** validates values arriving from peers (and local writes, in development) */
  schema?: Schema<V>;
  merge?: MergeRule;
  /**
   * String fields of a value (at any depth) to hold once instead of once per row: `"shared"` for
   * a small vocabulary (node ids, sign-in methods, user agents, providers). A string equal to the
   * row's own key is always held as a reference to it. (`{ keyOf: table }`, which named fields
   * holding another table's key, is accepted and needs nothing any more: such keys are bytes.)
   */
  strings?: Record<string, "shared" | { keyOf: string }>;
  /**
   * Top-level string fields to index (`indexTable(table, field)` then finds rows by them). Declared
   * before the rows come (startCluster's `tables`), an index is kept while they are restored or
   * caught up, in the same slices, instead of being built all at once when the app asks for it.
   */
  indexes?: string[];
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

export type ApplyResult = "applied" | "stale" | "rejected";

/** A table as another thread holds it (see `ClusterStore.exportTables`): typed arrays and pages, moved, not copied. */
export interface TableExport {
  name: string;
  merge: MergeRule;
  used: number;
  count: number;
  live: number;
  uncheckedCount: number;
  free: number[];
  addr: Uint32Array;
  flags: Uint8Array;
  digest: Uint32Array;
  index: { hashes: Uint32Array; table: Int32Array; count: number };
  arena: ArenaState;
  fieldIndexes: Array<{ field: string; index: { table: Int32Array; count: number; hashOf: Uint32Array } }>;
}

export interface StoreExport {
  tables: TableExport[];
  dictionary: { shapes: string[][]; strings: string[]; writers: string[] };
  /** the greatest stamp restored (the clock moves past it) */
  restoreMax: Stamp | undefined;
}

/** Rows a drain of the journal handed (to give back when their commit fails); valid until the next drain. */
export interface Drained {
  count: number;
}

/** A growable list of (table id, slot) pairs in typed arrays: no object, and no boxed number, per row. */
class SlotList {
  ids = new Uint32Array(1024);
  slots = new Uint32Array(1024);
  length = 0;

  push(id: number, slot: number): void {
    if (this.length === this.slots.length) {
      const ids = new Uint32Array(this.length * 2);
      ids.set(this.ids);
      this.ids = ids;
      const slots = new Uint32Array(this.length * 2);
      slots.set(this.slots);
      this.slots = slots;
    }
    this.ids[this.length] = id;
    this.slots[this.length] = slot;
    this.length += 1;
  }

  /** Drop the first `n` entries. */
  shift(n: number): void {
    this.ids.copyWithin(0, n, this.length);
    this.slots.copyWithin(0, n, this.length);
    this.length -= n;
  }
}

/** The slot-level side of a table, for indexes kept inside the cluster library (table-index.ts). */
// a registered symbol: the app's build and the server's each bundle a copy of this module
export const TABLE_INTERNALS = Symbol.for("pwdless-gs.table-internals");

export interface TableInternals<V> {
  /** the slot holding the key (live or a tombstone), or -1 */
  slotOf(key: string): number;
  keyAt(slot: number): string;
  /** the live value in the slot, or undefined */
  valueAt(slot: number, key: string): V | undefined;
  /** every live row, with its slot */
  forEachLive(visit: (slot: number, key: string, value: V) => void): void;
  /** the index of a top-level string field, kept by the store (built now when it was not declared) */
  fieldIndex(field: string): SlotMultimap;
}

/**
 * Where an applied record came from: this node's own write, a peer's live gossip (or the Redis
 * fan-out), a catch-up pull, or this node's own file read back at start.
 */
export type ApplyOrigin = "local" | "remote" | "sync" | "restore";

/** Told of every record the store applies, tombstones included. */
export type AppliedListener = (record: RecordEnvelope, origin: ApplyOrigin) => void;

export interface StoreOptions {
  nodeId: string;
  clock?: WallClock;
  /** how long a delete's tombstone is kept before it may be collected */
  tombstoneTtlMs?: number;
  /** remote stamps further than this ahead of our wall clock are refused */
  maxClockSkewMs?: number;
}

/**
 * Ids in records from elsewhere (a peer's stream, a file) mapped to this store's: built entry by
 * entry as their dictionary arrives. While every id maps to itself (a file read into the empty
 * store it was written from), records are taken as they are.
 */
export class DictionaryMapping {
  readonly theirs = new Dictionary();
  readonly shapes: number[] = [];
  readonly strings: number[] = [];
  readonly writers: number[] = [];
  identity = true;

  constructor(private readonly ours: Dictionary) {}

  addShape(fields: string[]): void {
    const id = this.theirs.shapes.length;
    this.theirs.shapes.push(fields);
    const mine = this.ours.shapeId(fields);
    this.shapes.push(mine);
    if (mine !== id) this.identity = false;
  }

  addString(s: string): void {
    const id = this.theirs.strings.length;
    this.theirs.strings.push(s);
    const mine = this.ours.stringId(s);
    this.strings.push(mine);
    if (mine !== id) this.identity = false;
  }

  addWriter(node: string): void {
    const id = this.theirs.writers.length;
    this.theirs.writers.push(node);
    const mine = this.ours.writerId(node);
    this.writers.push(mine);
    if (mine !== id) this.identity = false;
  }
}

export const TABLE_NAME = /^[a-z][a-zA-Z0-9_-]{0,39}$/;
export const MAX_KEY_LENGTH = 512;
export const DEFAULT_TOMBSTONE_TTL_MS = 7 * 24 * 60 * 60 * 1000;
export const DEFAULT_MAX_CLOCK_SKEW_MS = 60_000;

/** slot flags */
const F_USED = 1;
const F_TOMB = 2;
/** stored before the table had a schema (from a peer): checked when the schema comes */
const F_UNCHECKED = 4;
/** changed since the journal was last drained (persistence) */
const F_DIRTY = 8;

/** catch-up sends a table's rows by groups of 64 digest buckets (see `slotsInBuckets`) */
const GROUP_SHIFT = 6;
const BUCKET_GROUPS = BUCKETS >> GROUP_SHIFT;

/** a table whose dead bytes pass this (and a quarter of its pages) is compacted in the background */
const COMPACT_MIN_DEAD = 1 << 20;
const COMPACT_SLICE_MS = 4;

// --- the key being worked on: its bytes, hash and (for the digest) code units; one at a time ---
const probe = new ByteWriter(1024);
const units = new Uint16Array(MAX_KEY_LENGTH);
let unitCount = 0;
let unitsOf: string | undefined;
/** a field's code units, for an index (apart from `units`: the key's are still needed after) */
const fieldUnits = new Uint16Array(1024);
let keyHash = 0;

function prepareString(key: string): void {
  probe.pos = 0;
  probe.string(key);
  keyHash = fnv1a(key);
  // the code units are filled only when the digest needs them (a write, not a read)
  unitsOf = key;
}

function prepareBytes(src: Buffer, keyStart: number, lookup = true): void {
  if (lookup) {
    const n = keyLengthAt(src, keyStart);
    probe.pos = 0;
    probe.bytes(src, keyStart, keyStart + n);
  }
  unitCount = keyUnitsAt(src, keyStart, units);
  unitsOf = undefined;
  keyHash = fnv1aUnits(units, unitCount);
}

function readyUnits(): void {
  if (unitsOf !== undefined) {
    unitCount = keyUnitsOfString(unitsOf, units);
    unitsOf = undefined;
  }
}

// --- the record last read (`readHeader`) ---
let rPage: Buffer = Buffer.alloc(0);
let rStart = 0;
let rEnd = 0;
let rT = 0;
let rC = 0;
let rN = 0;
let rKey = 0;
let rValue = 0;

// --- a record being built: [key][t][c][n][value], its length prefix added when stored ---
const body = new ByteWriter(4096);
/** or, instead of `body`, a record's body where it already is */
let bodySource: Buffer | undefined;
let bodyStart = 0;
let bodyLength = 0;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size += 1;
  }
  return size;
}

/**
 * One table's rows: key → slot (a hash table over typed arrays), and per slot the address of its
 * record (key, stamp, value in the compact binary form) in the table's arena, and its flags. A
 * user, its email claim and a session cost ~300 bytes where JS objects cost ~900.
 */
class TableState implements KeySource {
  readonly index: KeyIndex = new KeyIndex(this);
  arena = new Arena();
  addr: Uint32Array = new Uint32Array(64);
  flags: Uint8Array = new Uint8Array(64);
  free: number[] = [];
  used = 0;
  uncheckedCount = 0;
  /** running digest: XOR of every row's version hash, per bucket */
  digest: Uint32Array = new Uint32Array(BUCKETS * WORDS_PER_BUCKET);
  count = 0;
  live = 0;
  readonly listeners = new Set<ChangeListener<unknown>>();
  schema: Schema<unknown> | undefined;
  /** the schema's check of values in their binary form, when it describes them */
  bytesCheck: BytesCheck | undefined;
  /** indexes by a top-level string field, kept from the rows' bytes as they change */
  readonly fieldIndexes: Array<{ field: string; index: SlotMultimap }> = [];
  merge: MergeRule = "last-writer-wins";
  shared: Set<string> | undefined;
  opened = false;
  releasedSinceCheck = 0;
  compacting = false;
  constructor(
    readonly name: string,
    /** its number in the store (the journal holds numbers) */
    readonly id: number,
  ) {}

  matches(slot: number): boolean {
    const a = this.addr[slot]!;
    const page = this.arena.page(a);
    let p = Arena.offsetOf(a);
    while (page[p]! >= 0x80) p += 1;
    return sameBytes(page, p + 1, probe.buf, 0, probe.pos);
  }

  allocate(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    if (this.used === this.addr.length) this.grow(this.addr.length * 2);
    return this.used++;
  }

  reserve(slots: number): void {
    if (slots > this.addr.length) {
      let size = this.addr.length;
      while (size < slots) size *= 2;
      this.grow(size);
    }
    this.index.expect(slots);
    for (const { index } of this.fieldIndexes) index.expect(slots);
  }

  private grow(size: number): void {
    const addr = new Uint32Array(size);
    addr.set(this.addr);
    this.addr = addr;
    const flags = new Uint8Array(size);
    flags.set(this.flags);
    this.flags = flags;
    this.index.reserve(size);
  }

  /** Read a slot's record header into the `r*` variables. */
  readHeader(slot: number): void {
    const a = this.addr[slot]!;
    const page = this.arena.page(a);
    rPage = page;
    rStart = Arena.offsetOf(a);
    cursor.pos = rStart;
    const len = readVarint(page);
    rEnd = cursor.pos + len;
    rKey = cursor.pos;
    skipString(page);
    rT = readVarint(page);
    rC = readVarint(page);
    rN = readVarint(page);
    rValue = cursor.pos;
  }

  /** XOR the version (current key's units, t, c, writer hash) into the running digest. */
  toggleDigest(slot: number, t: number, c: number, writerHash: number): void {
    readyUnits();
    versionHashUnits(units, unitCount, t, c, writerHash);
    const b = (this.index.hashes[slot]! % BUCKETS) * WORDS_PER_BUCKET;
    this.digest[b] ^= hashOut[0]!;
    this.digest[b + 1] ^= hashOut[1]!;
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
  /** shapes, pooled strings and writers of every record held (ids shared by all tables) */
  readonly dictionary = new Dictionary();
  private readonly tables = new Map<string, TableState>();
  private readonly writeListeners = new Set<(record: RecordEnvelope) => void>();
  private readonly appliedListeners = new Set<AppliedListener>();
  private readonly tombstoneTtlMs: number;
  private readonly maxClockSkewMs: number;
  readonly counters = { localWrites: 0, remoteApplied: 0, remoteStale: 0, remoteRejected: 0 };
  /**
   * Values deleted and tombstones collected so far (not counting a restore): the tables files
   * still hold what went away until their next snapshot, which this tells them to write.
   */
  forgotten = 0;
  private rowRevision = 0;
  private readonly writerHashes: number[] = [];
  private journaling = false;
  /** the journal: (table, slot) of every row changed, in the order they first changed since drained */
  private readonly journal = new SlotList();
  /** entries before this index are drained; `journalBase` entries were dropped from the front */
  private journalHead = 0;
  private journalBase = 0;
  /** what the last drain handed, to give back if its commit fails */
  private readonly drained = new SlotList();
  /** tables by id (the journal holds ids) */
  private readonly tableList: TableState[] = [];
  private restoreMax: Stamp | undefined;
  private latestSeen = 0;

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
    for (const field of options.indexes ?? []) this.fieldIndex(state, field);
    if (options.strings && !state.shared) {
      const shared = Object.entries(options.strings).filter(([, how]) => how === "shared");
      if (shared.length > 0) state.shared = new Set(shared.map(([field]) => field));
    }
    // a table declared at start-up (for its merge rule) gets its schema when the app opens it
    if (options.schema && !state.schema) {
      state.schema = options.schema as Schema<unknown>;
      const spec = state.schema.binarySpec?.();
      state.bytesCheck = spec ? compileSpec(spec) : undefined;
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
    if (!this.acceptable(record)) return this.rejected();
    const state = this.state(record.table);
    const { t, c, n } = record.stamp;
    prepareString(record.key);
    const slot = state.index.find(keyHash);
    // a stale version is dropped before its value is validated: duplicates cost a lookup
    if (slot >= 0 && !this.wins(state, slot, t, c, n, record.value)) return this.stale(record.stamp, origin);
    let value = record.value;
    if (value !== null && state.schema && origin !== "restore") {
      try {
        value = state.schema.parse(value);
      } catch {
        return this.rejected();
      }
    }
    const writer = this.dictionary.writerId(n);
    try {
      this.build(state, record.key, t, c, writer, value);
    } catch (error) {
      if (error instanceof CodecError) return this.rejected();
      throw error;
    }
    this.observe(t, c, n, origin);
    const unchecked = value !== null && !state.schema && origin !== "restore";
    this.install(state, slot, record.key, t, c, writer, value, unchecked, "remote", origin);
    this.counters.remoteApplied += 1;
    return "applied";
  }

  /**
   * Merge a record in the binary form (`[len][key][t][c][n][value]`, ids of `from`'s dictionary):
   * a catch-up's rows, checked by the table's schema when it has one; or this node's own file's
   * ("restore"), trusted, and taken byte for byte while the ids map to themselves.
   */
  applyEncoded(
    table: string,
    src: Buffer,
    start: number,
    from: DictionaryMapping,
    origin: "sync" | "restore",
    unchecked = false,
    fresh = false,
  ): ApplyResult {
    const state = this.tables.get(table) ?? (TABLE_NAME.test(table) ? this.state(table) : undefined);
    if (!state) return this.rejected();
    cursor.pos = start;
    const len = readVarint(src);
    const keyStart = cursor.pos;
    const end = keyStart + len;
    if (end > src.length) throw new CodecError("truncated record");
    const keyLength = keyLengthAt(src, keyStart);
    if (keyLength > 4 * MAX_KEY_LENGTH + 9) return this.rejected();
    // a snapshot's rows into an empty table: each key comes once, so none is looked up
    prepareBytes(src, keyStart, !fresh);
    if (unitCount === 0 || unitCount > MAX_KEY_LENGTH) return this.rejected();
    cursor.pos = keyStart + keyLength;
    const t = readVarint(src);
    const c = readVarint(src);
    const theirWriter = readVarint(src);
    const valueStart = cursor.pos;
    const writer = from.writers[theirWriter];
    const n = from.theirs.writers[theirWriter];
    if (writer === undefined || n === undefined) throw new CodecError("unknown writer");
    if (!Number.isSafeInteger(t) || !Number.isSafeInteger(c) || this.fromTheFuture(t)) {
      return this.rejected();
    }
    const slot = fresh ? -1 : state.index.find(keyHash);
    if (slot >= 0) {
      let incoming: unknown;
      if (state.merge === "first-writer-wins") {
        // a claim's value takes part in its order (see claimOrder); a claims table is small
        try {
          incoming = this.decodeAt(src, keyStart, valueStart, from);
        } catch (error) {
          if (error instanceof CodecError) return this.rejected();
          throw error;
        }
      }
      if (!this.wins(state, slot, t, c, n, incoming)) return this.stale({ t, c, n }, origin);
    }
    const isNull = src[valueStart] === NULL_TAG;
    let key: string | undefined;
    let value: unknown;
    if (!isNull && state.schema && origin === "sync") {
      // a peer's row is checked as gossip is, by the table's schema: in its binary form when the
      // schema describes its values (the row is then kept as it came, nothing built), else built
      // and checked (kept as it came when it passes the schema's fast check; else parsed, and the
      // parsed value encoded as ours)
      let passed = false;
      cursor.pos = valueStart;
      if (state.bytesCheck) {
        try {
          passed = state.bytesCheck(src, from.theirs, src, keyStart) && cursor.pos === end;
        } catch {
          return this.rejected();
        }
      }
      if (passed) this.takeAsIs(src, keyStart, keyLength, valueStart, end, t, c, writer, from);
      else {
        key = readString(src, keyStart);
        cursor.pos = valueStart;
        let decoded: unknown;
        try {
          decoded = decodeValue(src, from.theirs, key);
          if (cursor.pos !== end) throw new CodecError("a record's value does not end where the record does");
          if (state.schema.check?.(decoded)) value = decoded;
          else {
            value = state.schema.parse(decoded);
            this.build(state, key, t, c, writer, value);
          }
        } catch {
          return this.rejected();
        }
        if (value === decoded) this.takeAsIs(src, keyStart, keyLength, valueStart, end, t, c, writer, from);
      }
    } else this.takeAsIs(src, keyStart, keyLength, valueStart, end, t, c, writer, from);
    this.observe(t, c, n, origin);
    const unsure = !isNull && (origin === "sync" ? !state.schema : unchecked);
    if (key === undefined && (state.listeners.size > 0 || this.appliedListeners.size > 0)) {
      key = readString(src, keyStart);
      if (!isNull) {
        cursor.pos = valueStart;
        value = decodeValue(src, from.theirs, key);
      } else value = null;
    }
    this.install(state, slot, key, t, c, writer, isNull ? null : value, unsure, "remote", origin);
    this.counters.remoteApplied += 1;
    return "applied";
  }

  /** Put a record from elsewhere into `body` as it is: byte for byte while ids map to themselves, else with ours. */
  private takeAsIs(
    src: Buffer,
    keyStart: number,
    keyLength: number,
    valueStart: number,
    end: number,
    t: number,
    c: number,
    writer: number,
    from: DictionaryMapping,
  ): void {
    body.pos = 0;
    bodySource = undefined;
    if (from.identity) {
      // taken straight from where it is (install copies it once, into the arena)
      bodySource = src;
      bodyStart = keyStart;
      bodyLength = end - keyStart;
      return;
    }
    body.bytes(src, keyStart, keyStart + keyLength);
    body.varint(t);
    body.varint(c);
    body.varint(writer);
    cursor.pos = valueStart;
    transcodeValue(src, body, {
      shapes: from.shapes,
      strings: from.strings,
      dict: this.dictionary,
      theirShapes: from.theirs.shapes,
    });
    if (cursor.pos !== end) throw new CodecError("a record's value does not end where the record does");
  }

  /** Every row, tombstones included, of one table or of all: what a snapshot carries. */
  *records(table?: string): IterableIterator<RecordEnvelope> {
    for (const state of this.tables.values()) {
      if (table !== undefined && state.name !== table) continue;
      for (let slot = 0; slot < state.used; slot += 1) {
        if (state.flags[slot]! & F_USED) yield this.recordAt(state, slot);
      }
    }
  }

  /**
   * Slots of a table in the wanted buckets, grouped by bucket group (64 buckets each) and within
   * a group in slot order, so reading them goes through memory mostly forwards (rows in bucket
   * order jump across the whole table), while a pull cut short still leaves whole buckets behind
   * it, which the next digest shows as equal: at most a group is sent again. Rows removed
   * meanwhile are skipped by `copyRecords`.
   */
  slotsInBuckets(table: string, buckets: ReadonlySet<number>): Uint32Array {
    const steps = this.slotsInBucketsSteps(table, buckets);
    for (;;) {
      const next = steps.next();
      if (next.done) return next.value;
    }
  }

  /**
   * `slotsInBuckets` in steps of 128k slots: the caller may yield between them (a table of a
   * million rows takes two passes over its columns, tens of milliseconds on a busy host).
   */
  *slotsInBucketsSteps(table: string, buckets: ReadonlySet<number>): Generator<void, Uint32Array, void> {
    const state = this.tables.get(table);
    if (!state) return new Uint32Array(0);
    const wanted = new Uint8Array(BUCKETS);
    for (const b of buckets) wanted[b] = 1;
    const starts = new Uint32Array(BUCKET_GROUPS + 1);
    const STEP = 131_072;
    for (let from = 0; from < state.used; from += STEP) {
      const { flags } = state;
      const { hashes } = state.index;
      const to = Math.min(state.used, from + STEP);
      for (let slot = from; slot < to; slot += 1) {
        const b = hashes[slot]! % BUCKETS;
        if (flags[slot]! & F_USED && wanted[b]) starts[(b >> GROUP_SHIFT) + 1] += 1;
      }
      yield;
    }
    for (let g = 0; g < BUCKET_GROUPS; g += 1) starts[g + 1] += starts[g]!;
    const order = new Uint32Array(starts[BUCKET_GROUPS]!);
    const fill = starts.slice(0, BUCKET_GROUPS);
    for (let from = 0; from < state.used; from += STEP) {
      // rows added since the count are left for the next pull; rows gone are skipped by copyRecords
      const { flags } = state;
      const { hashes } = state.index;
      const to = Math.min(state.used, from + STEP);
      for (let slot = from; slot < to; slot += 1) {
        const b = hashes[slot]! % BUCKETS;
        const g = b >> GROUP_SHIFT;
        if (flags[slot]! & F_USED && wanted[b] && fill[g]! < starts[g + 1]!) order[fill[g]++] = slot;
      }
      yield;
    }
    return order;
  }

  /** Append a slot's record (with its length prefix, ids of this store's dictionary) to `w`; false when the slot is empty. */
  copyRecord(table: string, slot: number, w: ByteWriter): boolean {
    const state = this.tables.get(table);
    if (!state || slot >= state.used || !(state.flags[slot]! & F_USED)) return false;
    const a = state.addr[slot]!;
    const page = state.arena.page(a);
    const start = Arena.offsetOf(a);
    cursor.pos = start;
    const len = readVarint(page);
    w.bytes(page, start, cursor.pos + len);
    return true;
  }

  /**
   * Append the records of `slots[from…]` to `w` until it holds `until` bytes; returns where to go
   * on (`slots.length` when done). Records longer than `maxRecord` are left out and counted in `skipped`.
   */
  copyRecords(
    table: string,
    slots: Uint32Array,
    from: number,
    w: ByteWriter,
    until: number,
    maxRecord: number,
    skipped: { count: number },
  ): number {
    const state = this.tables.get(table);
    if (!state) return slots.length;
    const { flags, addr, arena } = state;
    let i = from;
    while (i < slots.length && w.pos < until) {
      const slot = slots[i++]!;
      if (slot >= state.used || !(flags[slot]! & F_USED)) continue;
      const a = addr[slot]!;
      const page = arena.page(a);
      const start = Arena.offsetOf(a);
      cursor.pos = start;
      const end = readVarint(page) + cursor.pos;
      if (end - start > maxRecord) {
        skipped.count += 1;
        continue;
      }
      w.bytes(page, start, end);
    }
    return i;
  }

  /**
   * Append the records of slots `from…` whose unchecked flag is `unchecked` to `w` until it holds
   * `until` bytes (a snapshot of the table, a few ms at a time); returns the slot to go on from
   * (`slotCount` when done).
   */
  copySlots(table: string, from: number, w: ByteWriter, until: number, unchecked: boolean): number {
    const state = this.tables.get(table);
    if (!state) return 0;
    const { flags, addr, arena } = state;
    const want = F_USED | (unchecked ? F_UNCHECKED : 0);
    let slot = from;
    while (slot < state.used && w.pos < until) {
      const f = flags[slot]!;
      const a = addr[slot]!;
      slot += 1;
      if ((f & (F_USED | F_UNCHECKED)) !== want) continue;
      const page = arena.page(a);
      const start = Arena.offsetOf(a);
      cursor.pos = start;
      const end = readVarint(page) + cursor.pos;
      w.bytes(page, start, end);
    }
    return slot;
  }

  /** Rows stored before their table had its schema (they are written apart, and checked when it comes). */
  uncheckedCount(table: string): number {
    return this.tables.get(table)?.uncheckedCount ?? 0;
  }

  /** Rows a table holds (tombstones included): the slots `copyRecord` may be asked for, below `slotCount`. */
  slotCount(table: string): number {
    return this.tables.get(table)?.used ?? 0;
  }

  /** Is the slot's row unchecked (stored from a peer before the table had its schema)? */
  isUnchecked(table: string, slot: number): boolean {
    const state = this.tables.get(table);
    return state !== undefined && (state.flags[slot]! & F_UNCHECKED) !== 0;
  }

  /** Does the store hold nothing yet (no row, no dictionary entry)? A restore can then be adopted whole. */
  isEmpty(): boolean {
    const d = this.dictionary;
    if (d.shapes.length > 0 || d.strings.length > 0 || d.writers.length > 0) return false;
    for (const state of this.tables.values()) if (state.count > 0) return false;
    return true;
  }

  /** How its tables were declared (merge rule, indexed fields), for a store on another thread to match. */
  declarations(): Record<string, TableOptions<unknown>> {
    const out: Record<string, TableOptions<unknown>> = {};
    for (const state of this.tables.values()) {
      out[state.name] = {
        merge: state.merge,
        indexes: state.fieldIndexes.map((i) => i.field),
        ...(state.shared ? { strings: Object.fromEntries([...state.shared].map((f) => [f, "shared" as const])) } : {}),
      };
    }
    return out;
  }

  /**
   * Everything held, to hand to another thread (a restore done off the main thread): the typed
   * arrays and pages go in `transfer`. The store must not be used after.
   */
  exportTables(): { state: StoreExport; transfer: ArrayBuffer[] } {
    const transfer: ArrayBuffer[] = [];
    const move = <T extends { buffer: ArrayBufferLike }>(a: T): T => {
      if (a.buffer instanceof ArrayBuffer && !transfer.includes(a.buffer)) transfer.push(a.buffer);
      return a;
    };
    const tables: TableExport[] = [];
    for (const state of this.tables.values()) {
      const index = state.index.export();
      const arena = state.arena.export();
      for (const page of arena.pages) if (page) transfer.push(page);
      tables.push({
        name: state.name,
        merge: state.merge,
        used: state.used,
        count: state.count,
        live: state.live,
        uncheckedCount: state.uncheckedCount,
        free: state.free,
        addr: move(state.addr),
        flags: move(state.flags),
        digest: move(state.digest),
        index: { hashes: move(index.hashes), table: move(index.table), count: index.count },
        arena,
        fieldIndexes: state.fieldIndexes.map(({ field, index: map }) => {
          const e = map.export();
          return { field, index: { table: move(e.table), count: e.count, hashOf: move(e.hashOf) } };
        }),
      });
    }
    const d = this.dictionary;
    return {
      state: {
        tables,
        dictionary: { shapes: d.shapes, strings: d.strings, writers: d.writers },
        restoreMax: this.restoreMax,
      },
      transfer,
    };
  }

  /** Take over what another thread restored (`exportTables`); the store must be empty (`isEmpty`). */
  adoptTables(exported: StoreExport): void {
    if (!this.isEmpty()) throw new Error("adoptTables needs an empty store");
    for (const fields of exported.dictionary.shapes) this.dictionary.shapeId(fields);
    for (const s of exported.dictionary.strings) this.dictionary.stringId(s);
    for (const w of exported.dictionary.writers) this.dictionary.writerId(w);
    for (const t of exported.tables) {
      const state = this.state(t.name);
      if (!state.opened) {
        state.opened = true;
        state.merge = t.merge;
      }
      state.used = t.used;
      state.count = t.count;
      state.live = t.live;
      state.uncheckedCount = t.uncheckedCount;
      state.free = t.free;
      state.addr = t.addr;
      state.flags = t.flags;
      state.digest = t.digest;
      state.index.adopt(t.index);
      state.arena = Arena.adopt(t.arena);
      for (const mine of state.fieldIndexes) {
        const theirs = t.fieldIndexes.find((i) => i.field === mine.field);
        if (theirs) mine.index = SlotMultimap.adopt(theirs.index);
        else {
          // declared here but not there: filed now
          mine.index = new SlotMultimap();
          for (let slot = 0; slot < state.used; slot += 1) {
            if ((state.flags[slot]! & (F_USED | F_TOMB)) === F_USED) this.file(state, slot, mine.field, mine.index);
          }
        }
      }
      this.rowRevision += 1;
    }
    if (exported.restoreMax) this.restoreMax = exported.restoreMax;
    this.restored();
  }

  /**
   * Make room at once for `rows` rows that come (a restore or a snapshot says how many), so that
   * adding them never rehashes. Into a table that already holds rows, room for as many as the
   * larger of the two: a peer answering a pull sends every row of the buckets that differ, which
   * are mostly versions the table holds (a holder pulling from a joiner mid-catch-up is sent back
   * its own rows); room for `count + rows` there rehashed a million-row index for nothing, 145 ms
   * on-CPU in one go on the serving holder.
   */
  expectRows(table: string, rows: number): void {
    if (!TABLE_NAME.test(table)) return;
    const state = this.state(table);
    state.reserve(Math.max(state.count, rows));
  }

  // --- the journal: what persistence commits ---

  /** From now on, remember every row changed (but not restored), for `drainJournal`. */
  startJournal(): void {
    this.journaling = true;
  }

  stopJournal(): void {
    this.journaling = false;
  }

  /** Entries of the journal not drained yet. */
  get journalSize(): number {
    return this.journal.length - this.journalHead;
  }

  /** The journal's position now: a commit that has drained up to it holds every change so far. */
  get journalPosition(): number {
    return this.journalBase + this.journal.length;
  }

  /**
   * Hand rows changed since they were last drained, as they are now, to `visit` (their record
   * bytes with the length prefix), in the order they first changed, until `maxBytes` were handed;
   * the rest stay for the next drain (a commit's work stays bounded). Returns the position drained
   * up to, and what was handed, so a commit that fails can give it back (`rejournal`) before the
   * next drain.
   */
  drainJournal(
    visit: (table: string, page: Buffer, start: number, end: number, unchecked: boolean) => void,
    maxBytes = Infinity,
  ): { upTo: number; drained: Drained } {
    const drained = this.drained;
    drained.length = 0;
    const { ids, slots, length } = this.journal;
    let bytes = 0;
    let i = this.journalHead;
    for (; i < length && bytes < maxBytes; i += 1) {
      const state = this.tableList[ids[i]!]!;
      const slot = slots[i]!;
      const f = state.flags[slot]!;
      if (!(f & F_DIRTY)) continue;
      state.flags[slot] = f & ~F_DIRTY;
      if (!(f & F_USED)) continue;
      const a = state.addr[slot]!;
      const page = state.arena.page(a);
      const start = Arena.offsetOf(a);
      cursor.pos = start;
      const end = readVarint(page) + cursor.pos;
      visit(state.name, page, start, end, (f & F_UNCHECKED) !== 0);
      bytes += end - start;
      drained.push(state.id, slot);
    }
    this.journalHead = i;
    if (i === length || (i > 65_536 && i * 2 > length)) {
      // drop the drained front once it is most of the journal (amortised: a long backlog is not
      // moved at every drain), so the journal stays about the size of what is pending
      this.journalBase += i;
      this.journal.shift(i);
      this.journalHead = 0;
    }
    return { upTo: this.journalBase + this.journalHead, drained: { count: drained.length } };
  }

  /** Journal again what the last drain handed (its commit failed): the next drain hands those rows as they are then. */
  rejournal(drained: Drained): void {
    const { ids, slots } = this.drained;
    for (let i = 0; i < drained.count; i += 1) {
      const state = this.tableList[ids[i]!]!;
      const slot = slots[i]!;
      const f = state.flags[slot]!;
      if (!(f & F_USED) || f & F_DIRTY) continue;
      state.flags[slot] = f | F_DIRTY;
      this.journal.push(state.id, slot);
    }
  }

  /** The running digest of a table (live: copy it to keep it). */
  digestOf(table: string): TableDigest {
    const state = this.tables.get(table);
    return state ? { count: state.count, buckets: state.digest } : { count: 0, buckets: new Uint32Array(BUCKETS * 2) };
  }

  /** The stamp held for a key, tombstones included. */
  stampOf(table: string, key: string): Stamp | undefined {
    const state = this.tables.get(table);
    if (!state) return undefined;
    prepareString(key);
    const slot = state.index.find(keyHash);
    if (slot < 0) return undefined;
    state.readHeader(slot);
    return { t: rT, c: rC, n: this.dictionary.writers[rN]! };
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

  /** Bytes of records held, and of the pages holding them (outside the JS heap). */
  bytes(): { records: number; pages: number } {
    let records = 0;
    let pages = 0;
    for (const state of this.tables.values()) {
      records += state.arena.liveBytes;
      pages += state.arena.pageBytes;
    }
    return { records, pages };
  }

  /** Drop tombstones older than the safe period; returns how many were dropped. */
  collectTombstones(): number {
    const horizon = this.clock.wallNow() - this.tombstoneTtlMs;
    let dropped = 0;
    for (const state of this.tables.values()) {
      // a pass over the flags column; only tombstones' records are read
      for (let slot = 0; slot < state.used; slot += 1) {
        if ((state.flags[slot]! & (F_USED | F_TOMB)) !== (F_USED | F_TOMB)) continue;
        state.readHeader(slot);
        if (rT < horizon) {
          this.remove(state, slot);
          dropped += 1;
        }
      }
    }
    return dropped;
  }

  private recordAt(state: TableState, slot: number): RecordEnvelope {
    state.readHeader(slot);
    const page = rPage;
    const t = rT;
    const c = rC;
    const n = this.dictionary.writers[rN]!;
    const valueAt = rValue;
    const key = readString(page, rKey);
    cursor.pos = valueAt;
    const value = decodeValue(page, this.dictionary, key);
    return { table: state.name, key, value, stamp: { t, c, n } };
  }

  private remove(state: TableState, slot: number): void {
    state.readHeader(slot);
    // the digest needs the key's units: read them from the record
    unitCount = keyUnitsAt(rPage, rKey, units);
    unitsOf = undefined;
    state.toggleDigest(slot, rT, rC, this.writerHash(rN));
    const f = state.flags[slot]!;
    if (!(f & F_TOMB)) state.live -= 1;
    if (f & F_UNCHECKED) state.uncheckedCount -= 1;
    if (!(f & F_TOMB)) this.reindex(state, slot, false);
    state.arena.release(state.addr[slot]!, rEnd - rStart);
    state.index.remove(slot);
    state.flags[slot] = 0;
    state.free.push(slot);
    state.count -= 1;
    this.rowRevision += 1;
    this.forgotten += 1;
  }

  private writerHash(writer: number): number {
    const hashes = this.writerHashes;
    while (hashes.length <= writer) hashes.push(nodeHash(this.dictionary.writers[hashes.length]!));
    return hashes[writer]!;
  }

  /** Encode a record's body ([key][t][c][n][value]) into `body`; throws CodecError on a value JSON cannot hold. */
  private build(state: TableState, key: string, t: number, c: number, writer: number, value: unknown): void {
    bodySource = undefined;
    body.pos = 0;
    body.bytes(probe.buf, 0, probe.pos);
    body.varint(t);
    body.varint(c);
    body.varint(writer);
    encodeValue(body, value, this.dictionary, key, state.shared);
  }

  /**
   * Store the record in `body` (prepared key: `probe`, `units`, `keyHash`) at `slot` (-1: a new
   * row), keep the digest and counts, and tell the listeners. `key` and `value` are given when
   * already in hand; otherwise they are decoded only when someone listens.
   */
  private install(
    state: TableState,
    slot: number,
    key: string | undefined,
    t: number,
    c: number,
    writer: number,
    value: unknown,
    unchecked: boolean,
    origin: "local" | "remote",
    applied: ApplyOrigin,
  ): void {
    const source = bodySource ?? body.buf;
    const from = bodySource ? bodyStart : 0;
    const length = bodySource ? bodyLength : body.pos;
    bodySource = undefined;
    const total = varintSize(length) + length;
    const listening = state.listeners.size > 0;
    let previous: unknown = undefined;
    let wasLive = false;
    let address: number;
    if (slot < 0) {
      slot = state.allocate();
      state.index.insert(slot, keyHash);
      state.count += 1;
      address = state.arena.alloc(total);
    } else {
      state.readHeader(slot);
      const f = state.flags[slot]!;
      wasLive = !(f & F_TOMB);
      if (wasLive && listening) {
        const held = key ?? this.keyAt(state, slot);
        cursor.pos = rValue;
        previous = decodeValue(rPage, this.dictionary, held);
      }
      state.toggleDigest(slot, rT, rC, this.writerHash(rN));
      if (f & F_UNCHECKED) state.uncheckedCount -= 1;
      address = state.addr[slot]!;
      const old = rEnd - rStart;
      if (old !== total) {
        state.arena.release(address, old);
        address = state.arena.alloc(total);
        state.releasedSinceCheck += old;
      }
    }
    const page = state.arena.page(address);
    let p = Arena.offsetOf(address);
    let len = length;
    while (len >= 0x80) {
      page[p++] = (len % 128) | 0x80;
      len = Math.floor(len / 128);
    }
    page[p++] = len;
    source.copy(page, p, from, from + length);
    state.addr[slot] = address;
    const tomb = value === null;
    let f = F_USED | (tomb ? F_TOMB : 0) | (unchecked ? F_UNCHECKED : 0);
    if (unchecked) state.uncheckedCount += 1;
    if (this.journaling && applied !== "restore") {
      if (!(state.flags[slot]! & F_DIRTY)) this.journal.push(state.id, slot);
      f |= F_DIRTY;
    }
    state.flags[slot] = f;
    state.toggleDigest(slot, t, c, this.writerHash(writer));
    this.rowRevision += 1;
    if (!wasLive && !tomb) state.live += 1;
    else if (wasLive && tomb) {
      state.live -= 1;
      if (applied !== "restore") this.forgotten += 1;
    }
    if (state.fieldIndexes.length > 0 && (wasLive || !tomb)) this.reindex(state, slot, !tomb);
    if (state.releasedSinceCheck > COMPACT_MIN_DEAD) this.scheduleCompaction(state);
    const telling = this.appliedListeners.size > 0;
    const changed = listening && !(!wasLive && tomb);
    if (!telling && !changed) return;
    key ??= this.keyAt(state, slot);
    if (telling) {
      this.tellApplied(
        { table: state.name, key, value: tomb ? null : value, stamp: { t, c, n: this.dictionary.writers[writer]! } },
        applied,
      );
    }
    if (!changed) return;
    const change = { key, value: tomb ? undefined : value, previous: wasLive ? previous : undefined, origin };
    for (const listener of state.listeners) {
      try {
        listener(change);
      } catch (error) {
        console.error(`[cluster] change listener of table ${state.name} failed`, error);
      }
    }
  }

  /** The index of `field`, built from the rows held when it did not exist yet. */
  private fieldIndex(state: TableState, field: string): SlotMultimap {
    let index = state.fieldIndexes.find((i) => i.field === field)?.index;
    if (!index) {
      index = new SlotMultimap();
      state.fieldIndexes.push({ field, index });
      for (let slot = 0; slot < state.used; slot += 1) {
        if ((state.flags[slot]! & (F_USED | F_TOMB)) === F_USED) this.file(state, slot, field, index);
      }
    }
    return index;
  }

  /** A row changed: file it again under its fields' values (or only take it out, when it is gone). */
  private reindex(state: TableState, slot: number, live: boolean): void {
    const indexes = state.fieldIndexes;
    for (let i = 0; i < indexes.length; i += 1) {
      const { field, index } = indexes[i]!;
      index.remove(slot);
      if (live) this.file(state, slot, field, index);
    }
  }

  /** File a live row under the value of a top-level string field, read from its bytes when it can be. */
  private file(state: TableState, slot: number, field: string, index: SlotMultimap): void {
    state.readHeader(slot);
    const at = fieldAt(rPage, rValue, this.dictionary, field);
    if (at >= 0) {
      const n =
        rPage[at] === KEY_TAG
          ? keyUnitsAt(rPage, rKey, fieldUnits)
          : stringUnitsAt(rPage, at, this.dictionary, fieldUnits);
      if (n >= 0) {
        index.add(slot, termHashUnits(fieldUnits, n));
        return;
      }
    }
    // the slow way (a field written as a back-reference, a value of another shape): decode the row
    const key = this.keyAt(state, slot);
    state.readHeader(slot);
    cursor.pos = rValue;
    const value = decodeValue(rPage, this.dictionary, key) as Record<string, unknown> | null;
    const term = value?.[field];
    if (typeof term === "string") index.add(slot, termHash(term));
  }

  private keyAt(state: TableState, slot: number): string {
    const a = state.addr[slot]!;
    const page = state.arena.page(a);
    cursor.pos = Arena.offsetOf(a);
    readVarint(page);
    return readString(page, cursor.pos);
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

  private rejected(): ApplyResult {
    this.counters.remoteRejected += 1;
    return "rejected";
  }

  private stale(stamp: Stamp, origin: ApplyOrigin = "remote"): ApplyResult {
    this.observe(stamp.t, stamp.c, stamp.n, origin);
    this.counters.remoteStale += 1;
    return "stale";
  }

  /**
   * The clock moves past every stamp seen; a restore's and a catch-up's stamps are seen once per
   * batch (`restored`, called at its end and before any pause), not row by row.
   */
  private observe(t: number, c: number, n: string, origin: ApplyOrigin): void {
    if (origin !== "restore" && origin !== "sync") {
      this.clock.observe({ t, c, n });
      return;
    }
    const max = this.restoreMax;
    if (!max || t > max.t || (t === max.t && c > max.c)) this.restoreMax = { t, c, n };
  }

  /**
   * Is a stamp time further ahead of our wall clock than the allowed skew? The clock is read again
   * only when a stamp passes the last reading (a catch-up or a restore asks millions of times).
   */
  private fromTheFuture(t: number): boolean {
    if (t <= this.latestSeen) return false;
    this.latestSeen = this.clock.wallNow() + this.maxClockSkewMs;
    return t > this.latestSeen;
  }

  /** A restore (or a slice of a catch-up) is over: the clock moves past the greatest stamp it read. */
  restored(): void {
    if (this.restoreMax) this.clock.observe(this.restoreMax);
    this.restoreMax = undefined;
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

  /**
   * Does the version (t, c, n) beat the one held in `slot`, by the table's rule? On a
   * first-writer-wins table the values take part (a claim after a release, see claimOrder):
   * `incoming` is the arriving version's value (null for a release).
   */
  private wins(state: TableState, slot: number, t: number, c: number, n: string, incoming: unknown): boolean {
    state.readHeader(slot);
    let order: number;
    if (t !== rT) order = t < rT ? -1 : 1;
    else if (c !== rC) order = c < rC ? -1 : 1;
    else {
      const held = this.dictionary.writers[rN]!;
      order = n === held ? 0 : n < held ? -1 : 1;
    }
    if (state.merge !== "first-writer-wins") return order > 0;
    const heldT = rT;
    return claimOrder(incoming, t, order, this.heldValue(state, slot), heldT) > 0;
  }

  /** A record's value in `src` (null for a tombstone), decoded with the sender's dictionary. */
  private decodeAt(src: Buffer, keyStart: number, valueStart: number, from: DictionaryMapping): unknown {
    if (src[valueStart] === NULL_TAG) return null;
    const key = readString(src, keyStart);
    cursor.pos = valueStart;
    return decodeValue(src, from.theirs, key);
  }

  /** The value held in `slot` (null for a tombstone), decoded. */
  private heldValue(state: TableState, slot: number): unknown {
    if (state.flags[slot]! & F_TOMB) return null;
    const key = this.keyAt(state, slot);
    state.readHeader(slot);
    cursor.pos = rValue;
    return decodeValue(rPage, this.dictionary, key);
  }

  private state(name: string): TableState {
    let state = this.tables.get(name);
    if (!state) {
      state = new TableState(name, this.tableList.length);
      this.tables.set(name, state);
      this.tableList.push(state);
    }
    return state;
  }

  /** Validate the rows stored before the table had a schema (only those: usually none). */
  private revalidate(state: TableState): void {
    if (state.uncheckedCount === 0) return;
    for (let slot = 0; slot < state.used; slot += 1) {
      if (!(state.flags[slot]! & F_UNCHECKED)) continue;
      const record = this.recordAt(state, slot);
      let value: unknown;
      try {
        value = state.schema!.parse(record.value);
      } catch {
        this.remove(state, slot);
        this.counters.remoteRejected += 1;
        continue;
      }
      prepareString(record.key);
      const writer = this.dictionary.writerId(record.stamp.n);
      this.build(state, record.key, record.stamp.t, record.stamp.c, writer, value);
      // the checked version replaces it quietly: readers never saw it, and the file learns it is checked
      const listeners = [...state.listeners];
      state.listeners.clear();
      try {
        this.install(state, slot, record.key, record.stamp.t, record.stamp.c, writer, value, false, "remote", "sync");
      } finally {
        for (const l of listeners) state.listeners.add(l);
      }
    }
  }

  private scheduleCompaction(state: TableState): void {
    state.releasedSinceCheck = 0;
    if (state.compacting) return;
    const arena = state.arena;
    if (arena.deadBytes < Math.max(COMPACT_MIN_DEAD, arena.pageBytes / 4)) return;
    state.compacting = true;
    const sparse = arena.sparsePages();
    let next = 0;
    // moves the live records out of sparse pages, a few ms at a time, so their pages are given back
    const step = () => {
      const until = performance.now() + COMPACT_SLICE_MS;
      while (next < state.used) {
        const slot = next++;
        if (!(state.flags[slot]! & F_USED) || !sparse.has(Arena.pageOf(state.addr[slot]!))) continue;
        const from = state.addr[slot]!;
        const page = arena.page(from);
        const start = Arena.offsetOf(from);
        cursor.pos = start;
        const total = readVarint(page) + (cursor.pos - start);
        const to = arena.alloc(total);
        page.copy(arena.page(to), Arena.offsetOf(to), start, start + total);
        state.addr[slot] = to;
        arena.release(from, total);
        if ((next & 255) === 0 && performance.now() > until) break;
      }
      if (next < state.used) setTimeout(step, 0).unref();
      else state.compacting = false;
    };
    setTimeout(step, 0).unref();
  }

  private writeLocal(state: TableState, key: string, value: unknown): boolean {
    if (key.length === 0 || key.length > MAX_KEY_LENGTH) throw new Error(`invalid key for table ${state.name}`);
    prepareString(key);
    const slot = state.index.find(keyHash);
    if (state.merge === "first-writer-wins" && value !== null && slot >= 0) {
      if (!(state.flags[slot]! & F_TOMB)) return false;
      // claimed again after a release: the claim says which release it follows (see claimOrder)
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw new Error(`table ${state.name}: a released key is claimed again with an object value`);
      }
      state.readHeader(slot);
      value = { ...(value as Record<string, unknown>), after: rT };
    }
    const stamp = this.clock.now();
    const writer = this.dictionary.writerId(stamp.n);
    this.build(state, key, stamp.t, stamp.c, writer, value);
    this.install(state, slot, key, stamp.t, stamp.c, writer, value, false, "local", "local");
    this.counters.localWrites += 1;
    const record: RecordEnvelope = { table: state.name, key, value, stamp };
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
    // the view's methods (plain functions of an object literal) reach the store through this name
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const store = this;
    const dict = this.dictionary;
    const valueAt = (slot: number, key: string): V | undefined => {
      if ((state.flags[slot]! & (F_USED | F_TOMB)) !== F_USED) return undefined;
      state.readHeader(slot);
      cursor.pos = rValue;
      return decodeValue(rPage, dict, key) as V;
    };
    const internals: TableInternals<V> = {
      slotOf(key) {
        prepareString(key);
        return state.index.find(keyHash);
      },
      keyAt: (slot) => store.keyAt(state, slot),
      valueAt,
      fieldIndex: (field) => store.fieldIndex(state, field),
      forEachLive(visit) {
        for (let slot = 0; slot < state.used; slot += 1) {
          if ((state.flags[slot]! & (F_USED | F_TOMB)) !== F_USED) continue;
          const key = store.keyAt(state, slot);
          visit(slot, key, valueAt(slot, key)!);
        }
      },
    };
    const table: Table<V> & { [TABLE_INTERNALS]: TableInternals<V> } = {
      [TABLE_INTERNALS]: internals,
      name: state.name,
      get(key) {
        prepareString(key);
        const slot = state.index.find(keyHash);
        if (slot < 0 || state.flags[slot]! & F_TOMB) return undefined;
        state.readHeader(slot);
        cursor.pos = rValue;
        return decodeValue(rPage, dict, key) as V;
      },
      has(key) {
        prepareString(key);
        const slot = state.index.find(keyHash);
        return slot >= 0 && !(state.flags[slot]! & F_TOMB);
      },
      set(key, value) {
        return store.writeLocal(state, key, value);
      },
      delete(key) {
        prepareString(key);
        const slot = state.index.find(keyHash);
        if (slot < 0 || state.flags[slot]! & F_TOMB) return;
        store.writeLocal(state, key, null);
      },
      *scan() {
        for (let slot = 0; slot < state.used; slot += 1) {
          if ((state.flags[slot]! & (F_USED | F_TOMB)) !== F_USED) continue;
          const key = store.keyAt(state, slot);
          state.readHeader(slot);
          cursor.pos = rValue;
          yield [key, decodeValue(rPage, dict, key) as V];
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
    return table;
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
