/**
 * The compact binary form of a row, as the store holds it in memory, the tables file keeps it and
 * catch-up sends it: JSON values with tags instead of text, an object's field names replaced by a
 * shape id, strings of "shared" fields by a pooled id, a string equal to the row's key (or to an
 * earlier string of the same value) by a one-byte reference, canonical lowercase UUIDs as 16
 * bytes, integers as varints. Decoding gives back an equal JSON value (what `JSON.parse(JSON.
 * stringify(v))` gives: undefined fields dropped, NaN and Infinity as null, -0 as 0).
 *
 * A record is `[len][key][t][c][n][value]`: `len` (a varint) counts the bytes after itself, so
 * records can be copied and skipped without being read; the key first, so a lookup compares bytes
 * at a fixed place; the stamp as varints, the writer as an index into the dictionary.
 */

// value tags (value-check.ts reads them too); 0x40..0x7f are the integers 0..63 in one byte
export const T_NULL = 0x00;
export const T_FALSE = 0x01;
export const T_TRUE = 0x02;
export const T_UINT = 0x03;
export const T_NEGINT = 0x04;
export const T_F64 = 0x05;
export const T_LATIN1 = 0x06;
export const T_UTF8 = 0x07;
export const T_UUID = 0x08;
export const T_POOLED = 0x09;
export const T_KEY = 0x0a;
export const T_BACKREF = 0x0b;
export const T_ARRAY = 0x0c;
export const T_OBJECT = 0x0d;
/** an object whose shape is not in the dictionary (too many shapes): field names inline */
export const T_OBJECT_INLINE = 0x0e;
export const T_SMALL = 0x40;
const SMALL_MAX = 63;

/** the most shapes and pooled strings a dictionary holds; beyond, values carry them inline */
export const MAX_SHAPES = 65_536;
export const MAX_POOLED = 65_536;
export const MAX_WRITERS = 1 << 20;
/** strings this long or longer are remembered within a value, so a repeat costs two bytes */
const BACKREF_MIN = 6;
const BACKREF_MAX = 32;
const MAX_DEPTH = 64;

export class CodecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CodecError";
  }
}

interface ShapeNode {
  id: number;
  next: Map<string, ShapeNode> | undefined;
}

/**
 * What ids in encoded rows stand for: object shapes (lists of field names), pooled strings and
 * writers (node ids). Ids are handed out in order and never change, so a file or a stream that
 * lists the entries in order lets a reader build the same dictionary (or map ids to its own).
 */
export class Dictionary {
  readonly shapes: string[][] = [];
  readonly strings: string[] = [];
  readonly writers: string[] = [];
  private readonly root: ShapeNode = { id: -1, next: undefined };
  private readonly stringIds = new Map<string, number>();
  private readonly writerIds = new Map<string, number>();
  /** decoders per shape, built on first use */
  builders: Array<((values: unknown[]) => Record<string, unknown>) | undefined> = [];

  /** The id of the shape with these field names in this order, added when new; -1 when full. */
  shapeId(fields: readonly string[], count = fields.length): number {
    let node = this.root;
    for (let i = 0; i < count; i += 1) {
      const field = fields[i]!;
      let child = node.next?.get(field);
      if (child === undefined) {
        if (this.shapes.length >= MAX_SHAPES) return -1;
        child = { id: -1, next: undefined };
        (node.next ??= new Map()).set(field, child);
      }
      node = child;
    }
    if (node.id < 0) {
      if (this.shapes.length >= MAX_SHAPES) return -1;
      node.id = this.shapes.length;
      this.shapes.push(fields.slice(0, count));
    }
    return node.id;
  }

  /** The pooled id of a string, added when new; -1 when the pool is full. */
  stringId(s: string): number {
    let id = this.stringIds.get(s);
    if (id === undefined) {
      if (this.strings.length >= MAX_POOLED) return -1;
      id = this.strings.length;
      this.strings.push(s);
      this.stringIds.set(s, id);
    }
    return id;
  }

  writerId(node: string): number {
    let id = this.writerIds.get(node);
    if (id === undefined) {
      if (this.writers.length >= MAX_WRITERS) throw new CodecError("too many writers");
      id = this.writers.length;
      this.writers.push(node);
      this.writerIds.set(node, id);
    }
    return id;
  }

  hasWriter(node: string): number {
    return this.writerIds.get(node) ?? -1;
  }

  /** The function that builds an object of this shape from its values in order. */
  builder(shape: number): (values: unknown[]) => Record<string, unknown> {
    let build = this.builders[shape];
    if (build === undefined) {
      const fields = this.shapes[shape];
      if (fields === undefined) throw new CodecError(`unknown shape ${shape}`);
      // an object literal of fixed shape: V8 keeps its fields inline, and every row of a shape
      // shares one hidden class. Field names are JSON-quoted, so any name is a safe literal key.
      const body = `return {${fields.map((f, i) => `${JSON.stringify(f)}: v[${i}]`).join(", ")}};`;
      // new Function is built from field names only, each JSON-quoted
      build = (fields.includes("__proto__") ? slowBuilder(fields) : new Function("v", body)) as (
        values: unknown[],
      ) => Record<string, unknown>;
      this.builders[shape] = build;
    }
    return build;
  }
}

function slowBuilder(fields: string[]): (values: unknown[]) => Record<string, unknown> {
  return (values) => {
    const out: Record<string, unknown> = {};
    fields.forEach((f, i) =>
      Object.defineProperty(out, f, { value: values[i], enumerable: true, writable: true, configurable: true }),
    );
    return out;
  };
}

/** A growable byte buffer to encode into. */
export class ByteWriter {
  buf: Buffer;
  pos = 0;
  constructor(size = 4096) {
    this.buf = Buffer.allocUnsafeSlow(size);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafeSlow(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }

  /** A non-negative integer up to 2^53, 7 bits a byte. */
  varint(v: number): void {
    this.ensure(8);
    const buf = this.buf;
    if (v < 0x80000000) {
      while (v >= 0x80) {
        buf[this.pos++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      buf[this.pos++] = v;
      return;
    }
    while (v >= 0x80) {
      buf[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    buf[this.pos++] = v;
  }

  bytes(src: Uint8Array, start = 0, end = src.length): void {
    const n = end - start;
    this.ensure(n);
    if (n < 16) {
      const buf = this.buf;
      for (let i = 0; i < n; i += 1) buf[this.pos + i] = src[start + i]!;
    } else if (Buffer.isBuffer(src)) src.copy(this.buf, this.pos, start, end);
    else this.buf.set(src.subarray(start, end), this.pos);
    this.pos += n;
  }

  /** A string: a UUID as 16 bytes, else Latin-1 or UTF-8 with its length. */
  string(s: string): void {
    const n = s.length;
    if (n === 36 && isUuid(s)) {
      this.ensure(17);
      const buf = this.buf;
      buf[this.pos++] = T_UUID;
      for (let i = 0; i < 36; i += 1) {
        if (i === 8 || i === 13 || i === 18 || i === 23) continue;
        buf[this.pos++] = (HEX_VALUE[s.charCodeAt(i)]! << 4) | HEX_VALUE[s.charCodeAt(i + 1)]!;
        i += 1;
      }
      return;
    }
    let latin1 = true;
    for (let i = 0; i < n; i += 1) {
      if (s.charCodeAt(i) > 0xff) {
        latin1 = false;
        break;
      }
    }
    if (latin1) {
      this.ensure(n + 9);
      this.buf[this.pos++] = T_LATIN1;
      this.varint(n);
      const buf = this.buf;
      if (n < 32) for (let i = 0; i < n; i += 1) buf[this.pos + i] = s.charCodeAt(i);
      else buf.write(s, this.pos, n, "latin1");
      this.pos += n;
      return;
    }
    const bytes = Buffer.byteLength(s, "utf8");
    this.ensure(bytes + 9);
    this.buf[this.pos++] = T_UTF8;
    this.varint(bytes);
    this.buf.write(s, this.pos, bytes, "utf8");
    this.pos += bytes;
  }

  /** The bytes written so far, copied out. */
  take(): Uint8Array {
    const out = new Uint8Array(this.pos);
    out.set(this.buf.subarray(0, this.pos));
    return out;
  }
}

const HEX_VALUE = new Uint8Array(128).fill(0xff);
for (let i = 0; i < 10; i += 1) HEX_VALUE[48 + i] = i;
for (let i = 0; i < 6; i += 1) HEX_VALUE[97 + i] = 10 + i;
const HEX_PAIRS: string[] = [];
for (let i = 0; i < 256; i += 1) HEX_PAIRS.push(i.toString(16).padStart(2, "0"));
const HEX_CODES = [..."0123456789abcdef"].map((c) => c.charCodeAt(0));

/** A canonical lowercase UUID (any version): those are held as 16 bytes. */
export function isUuid(s: string): boolean {
  if (s.length !== 36) return false;
  for (let i = 0; i < 36; i += 1) {
    const c = s.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
    } else if (c >= 128 || HEX_VALUE[c] === 0xff) return false;
  }
  return true;
}

// what the value being encoded or decoded refers to (one at a time: no allocation per row)
let eDict: Dictionary = new Dictionary();
/** the row's key: a string equal to it is one byte */
let eKey = "";
/** field names whose string values are pooled (a small vocabulary: node ids, methods, user agents) */
let eShared: ReadonlySet<string> | undefined;

const seen: string[] = [];
let seenCount = 0;
/** field names of the object being encoded, one list per depth (no allocation per object) */
const fieldsAt: string[][] = [];

/**
 * Encode a JSON value (a row's value, or null for a tombstone) of the row `key`, pooling the
 * strings of `shared` fields in `dict`. Throws CodecError on what JSON cannot hold.
 */
export function encodeValue(
  w: ByteWriter,
  value: unknown,
  dict: Dictionary,
  key: string,
  shared: ReadonlySet<string> | undefined,
): void {
  seenCount = 0;
  eDict = dict;
  eKey = key;
  eShared = shared;
  encodeAny(w, value, undefined, 0);
}

function encodeAny(w: ByteWriter, value: unknown, field: string | undefined, depth: number): void {
  switch (typeof value) {
    case "string":
      encodeString(w, value, field);
      return;
    case "number":
      encodeNumber(w, value);
      return;
    case "boolean":
      w.u8(value ? T_TRUE : T_FALSE);
      return;
    case "object":
      break;
    default:
      // undefined, functions, symbols: what JSON.stringify makes null inside arrays
      w.u8(T_NULL);
      return;
  }
  if (value === null) {
    w.u8(T_NULL);
    return;
  }
  if (depth >= MAX_DEPTH) throw new CodecError("value nested too deeply");
  if (Array.isArray(value)) {
    w.u8(T_ARRAY);
    w.varint(value.length);
    for (let i = 0; i < value.length; i += 1) encodeAny(w, value[i], undefined, depth + 1);
    return;
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") {
    encodeAny(w, (toJSON as () => unknown).call(value), field, depth);
    return;
  }
  const object = value as Record<string, unknown>;
  // the shape: fields JSON would write (not undefined, functions or symbols), in their order
  const fields = (fieldsAt[depth] ??= []);
  fields.length = 0;
  for (const name in object) {
    if (!Object.prototype.hasOwnProperty.call(object, name)) continue;
    const v = object[name];
    if (v === undefined || typeof v === "function" || typeof v === "symbol") continue;
    fields.push(name);
  }
  const count = fields.length;
  const shape = eDict.shapeId(fields, count);
  if (shape >= 0) {
    w.u8(T_OBJECT);
    w.varint(shape);
    for (let i = 0; i < count; i += 1) encodeAny(w, object[fields[i]!], fields[i], depth + 1);
    return;
  }
  w.u8(T_OBJECT_INLINE);
  w.varint(count);
  for (let i = 0; i < count; i += 1) {
    const name = fields[i]!;
    w.string(name);
    encodeAny(w, object[name], name, depth + 1);
  }
}

function encodeNumber(w: ByteWriter, n: number): void {
  if (Number.isInteger(n)) {
    if (n >= 0) {
      if (n <= SMALL_MAX) {
        w.u8(T_SMALL + n);
        return;
      }
      if (n <= Number.MAX_SAFE_INTEGER) {
        w.u8(T_UINT);
        w.varint(n);
        return;
      }
    } else if (n >= -Number.MAX_SAFE_INTEGER) {
      w.u8(T_NEGINT);
      w.varint(-n - 1);
      return;
    }
  } else if (!Number.isFinite(n)) {
    w.u8(T_NULL);
    return;
  }
  w.ensure(9);
  w.buf[w.pos++] = T_F64;
  w.buf.writeDoubleLE(n, w.pos);
  w.pos += 8;
}

function encodeString(w: ByteWriter, s: string, field: string | undefined): void {
  if (s === eKey) {
    w.u8(T_KEY);
    return;
  }
  if (field !== undefined && eShared?.has(field)) {
    const id = eDict.stringId(s);
    if (id >= 0) {
      w.u8(T_POOLED);
      w.varint(id);
      return;
    }
  }
  if (s.length >= BACKREF_MIN) {
    for (let i = 0; i < seenCount; i += 1) {
      if (seen[i] === s) {
        w.u8(T_BACKREF);
        w.varint(i);
        return;
      }
    }
    if (seenCount < BACKREF_MAX) seen[seenCount++] = s;
  }
  w.string(s);
}

// --- reading ---

/** Where a read stopped: the reading functions advance it (one cursor; reads never nest). */
export const cursor = { pos: 0 };

export function readVarint(b: Uint8Array): number {
  let pos = cursor.pos;
  let byte = b[pos++]!;
  if (byte < 0x80) {
    cursor.pos = pos;
    return byte;
  }
  let v = byte & 0x7f;
  let shift = 7;
  let mul = 128;
  for (;;) {
    if (pos >= b.length) throw new CodecError("truncated varint");
    byte = b[pos++]!;
    if (shift < 28) v |= (byte & 0x7f) << shift;
    else v += (byte & 0x7f) * mul;
    if (byte < 0x80) break;
    shift += 7;
    mul *= 128;
    if (shift > 56) throw new CodecError("varint too long");
  }
  cursor.pos = pos;
  return v;
}

/** Read a string at `pos` (default: the cursor), e.g. a key or a field name; the cursor ends past it. */
export function readString(b: Buffer, pos = cursor.pos): string {
  cursor.pos = pos + 1;
  return readStringBody(b, b[pos]!);
}

function readStringBody(b: Buffer, tag: number): string {
  if (tag === T_LATIN1) {
    const n = readVarint(b);
    const start = cursor.pos;
    const end = start + n;
    if (end > b.length) throw new CodecError("truncated string");
    cursor.pos = end;
    if (n <= 12) {
      let s = "";
      for (let i = start; i < end; i += 1) s += String.fromCharCode(b[i]!);
      return s;
    }
    return b.toString("latin1", start, end);
  }
  if (tag === T_UUID) {
    const p = cursor.pos;
    if (p + 16 > b.length) throw new CodecError("truncated UUID");
    cursor.pos = p + 16;
    return `${HEX_PAIRS[b[p]!]}${HEX_PAIRS[b[p + 1]!]}${HEX_PAIRS[b[p + 2]!]}${HEX_PAIRS[b[p + 3]!]}-${HEX_PAIRS[b[p + 4]!]}${HEX_PAIRS[b[p + 5]!]}-${HEX_PAIRS[b[p + 6]!]}${HEX_PAIRS[b[p + 7]!]}-${HEX_PAIRS[b[p + 8]!]}${HEX_PAIRS[b[p + 9]!]}-${HEX_PAIRS[b[p + 10]!]}${HEX_PAIRS[b[p + 11]!]}${HEX_PAIRS[b[p + 12]!]}${HEX_PAIRS[b[p + 13]!]}${HEX_PAIRS[b[p + 14]!]}${HEX_PAIRS[b[p + 15]!]}`;
  }
  if (tag === T_UTF8) {
    const n = readVarint(b);
    const start = cursor.pos;
    if (start + n > b.length) throw new CodecError("truncated string");
    cursor.pos = start + n;
    return b.toString("utf8", start, start + n);
  }
  throw new CodecError(`not a string (tag ${tag})`);
}

/** Skip a string at the cursor. */
export function skipString(b: Uint8Array): void {
  const tag = b[cursor.pos++];
  if (tag === T_UUID) cursor.pos += 16;
  else if (tag === T_LATIN1 || tag === T_UTF8) {
    const n = readVarint(b);
    cursor.pos += n;
  } else throw new CodecError(`not a string (tag ${tag})`);
}

const backrefs: string[] = [];
let backrefCount = 0;
const valuesScratch: unknown[][] = [];

/** Decode the value at the cursor, of the row `key`, ids of `dict`. Throws CodecError on bytes that are not a value. */
export function decodeValue(b: Buffer, dict: Dictionary, key: string): unknown {
  backrefCount = 0;
  eDict = dict;
  eKey = key;
  return decodeAny(b, 0);
}

function decodeAny(b: Buffer, depth: number): unknown {
  if (cursor.pos >= b.length) throw new CodecError("truncated value");
  const tag = b[cursor.pos++]!;
  if (tag >= T_SMALL) {
    if (tag > T_SMALL + SMALL_MAX) throw new CodecError(`unknown tag ${tag}`);
    return tag - T_SMALL;
  }
  switch (tag) {
    case T_NULL:
      return null;
    case T_FALSE:
      return false;
    case T_TRUE:
      return true;
    case T_UINT:
      return readVarint(b);
    case T_NEGINT:
      return -readVarint(b) - 1;
    case T_F64: {
      const v = b.readDoubleLE(cursor.pos);
      cursor.pos += 8;
      return v;
    }
    case T_LATIN1:
    case T_UTF8:
    case T_UUID: {
      const s = readStringBody(b, tag);
      if (s.length >= BACKREF_MIN && backrefCount < BACKREF_MAX) backrefs[backrefCount++] = s;
      return s;
    }
    case T_POOLED: {
      const s = eDict.strings[readVarint(b)];
      if (s === undefined) throw new CodecError("unknown pooled string");
      return s;
    }
    case T_KEY:
      return eKey;
    case T_BACKREF: {
      const i = readVarint(b);
      if (i >= backrefCount) throw new CodecError("bad back-reference");
      return backrefs[i];
    }
    case T_ARRAY: {
      const n = readVarint(b);
      if (n > b.length - cursor.pos) throw new CodecError("array longer than its bytes");
      if (depth >= MAX_DEPTH) throw new CodecError("value nested too deeply");
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i += 1) out[i] = decodeAny(b, depth + 1);
      return out;
    }
    case T_OBJECT: {
      const shape = readVarint(b);
      const fields = eDict.shapes[shape];
      if (fields === undefined) throw new CodecError(`unknown shape ${shape}`);
      if (depth >= MAX_DEPTH) throw new CodecError("value nested too deeply");
      const values = (valuesScratch[depth] ??= []);
      const n = fields.length;
      for (let i = 0; i < n; i += 1) values[i] = decodeAny(b, depth + 1);
      const out = eDict.builder(shape)(values);
      values.length = 0;
      return out;
    }
    case T_OBJECT_INLINE: {
      const n = readVarint(b);
      if (depth >= MAX_DEPTH) throw new CodecError("value nested too deeply");
      const out: Record<string, unknown> = {};
      for (let i = 0; i < n; i += 1) {
        const name = readString(b);
        const v = decodeAny(b, depth + 1);
        if (name === "__proto__")
          Object.defineProperty(out, name, { value: v, enumerable: true, writable: true, configurable: true });
        else out[name] = v;
      }
      return out;
    }
    default:
      throw new CodecError(`unknown tag ${tag}`);
  }
}

/** Is the value at the cursor a tombstone (null)? Does not move the cursor. */
export function isNullAt(b: Uint8Array, pos: number): boolean {
  return b[pos] === T_NULL;
}

export const NULL_TAG = T_NULL;
export const KEY_TAG = T_KEY;

/**
 * Copy the value at `src`'s cursor into `w`, mapping its shape, pooled-string and nothing else
 * (a row from a file or a peer whose dictionary ids differ from ours), and check that it is a
 * well-formed value. `map` gives our id for theirs.
 */
export function transcodeValue(
  src: Buffer,
  w: ByteWriter,
  map: { shapes: Int32Array | number[]; strings: Int32Array | number[]; dict: Dictionary; theirShapes: string[][] },
  depth = 0,
): void {
  if (cursor.pos >= src.length) throw new CodecError("truncated value");
  const start = cursor.pos;
  const tag = src[cursor.pos++]!;
  if (tag >= T_SMALL) {
    if (tag > T_SMALL + SMALL_MAX) throw new CodecError(`unknown tag ${tag}`);
    w.u8(tag);
    return;
  }
  switch (tag) {
    case T_NULL:
    case T_FALSE:
    case T_TRUE:
    case T_KEY:
      w.u8(tag);
      return;
    case T_UINT:
    case T_NEGINT:
    case T_BACKREF:
      readVarint(src);
      w.bytes(src, start, cursor.pos);
      return;
    case T_F64:
      cursor.pos += 8;
      if (cursor.pos > src.length) throw new CodecError("truncated number");
      w.bytes(src, start, cursor.pos);
      return;
    case T_LATIN1:
    case T_UTF8:
    case T_UUID:
      cursor.pos = start;
      skipString(src);
      if (cursor.pos > src.length) throw new CodecError("truncated string");
      w.bytes(src, start, cursor.pos);
      return;
    case T_POOLED: {
      const id = map.strings[readVarint(src)];
      if (id === undefined || id < 0) throw new CodecError("unknown pooled string");
      w.u8(T_POOLED);
      w.varint(id);
      return;
    }
    case T_ARRAY: {
      const n = readVarint(src);
      if (n > src.length - cursor.pos) throw new CodecError("array longer than its bytes");
      if (depth >= MAX_DEPTH) throw new CodecError("value nested too deeply");
      w.u8(T_ARRAY);
      w.varint(n);
      for (let i = 0; i < n; i += 1) transcodeValue(src, w, map, depth + 1);
      return;
    }
    case T_OBJECT: {
      const theirs = readVarint(src);
      const ours = map.shapes[theirs];
      const fields = map.theirShapes[theirs];
      if (ours === undefined || ours < 0 || fields === undefined) throw new CodecError(`unknown shape ${theirs}`);
      if (depth >= MAX_DEPTH) throw new CodecError("value nested too deeply");
      w.u8(T_OBJECT);
      w.varint(ours);
      for (let i = 0; i < fields.length; i += 1) transcodeValue(src, w, map, depth + 1);
      return;
    }
    case T_OBJECT_INLINE: {
      const n = readVarint(src);
      if (depth >= MAX_DEPTH) throw new CodecError("value nested too deeply");
      w.u8(T_OBJECT_INLINE);
      w.varint(n);
      for (let i = 0; i < n; i += 1) {
        const s = cursor.pos;
        skipString(src);
        w.bytes(src, s, cursor.pos);
        transcodeValue(src, w, map, depth + 1);
      }
      return;
    }
    default:
      throw new CodecError(`unknown tag ${tag}`);
  }
}

/**
 * The key's UTF-16 code units, written into `out` (at most 512); returns how many. The hashes of
 * a key (its slot, its digest bucket, its version) are computed over these, whether the key is a
 * string in hand or bytes in a record, so both give the same numbers.
 */
export function keyUnitsOfString(key: string, out: Uint16Array): number {
  const n = key.length;
  for (let i = 0; i < n; i += 1) out[i] = key.charCodeAt(i);
  return n;
}

/** The code units of the encoded key at `pos`; sets `cursor.pos` past it. */
export function keyUnitsAt(b: Buffer, pos: number, out: Uint16Array): number {
  const tag = b[pos];
  cursor.pos = pos + 1;
  if (tag === T_UUID) {
    let o = 0;
    for (let i = 0; i < 16; i += 1) {
      if (i === 4 || i === 6 || i === 8 || i === 10) out[o++] = 45;
      const byte = b[pos + 1 + i]!;
      out[o++] = HEX_CODES[byte >> 4]!;
      out[o++] = HEX_CODES[byte & 15]!;
    }
    cursor.pos = pos + 17;
    return 36;
  }
  if (tag === T_LATIN1) {
    const n = readVarint(b);
    const start = cursor.pos;
    for (let i = 0; i < n; i += 1) out[i] = b[start + i]!;
    cursor.pos = start + n;
    return n;
  }
  cursor.pos = pos;
  return keyUnitsOfString(readString(b), out);
}

/** Move the cursor past one value (without building it). */
export function skipValue(b: Buffer, dict: Dictionary, depth = 0): void {
  const tag = b[cursor.pos++]!;
  if (tag >= T_SMALL) return;
  switch (tag) {
    case T_NULL:
    case T_FALSE:
    case T_TRUE:
    case T_KEY:
      return;
    case T_UINT:
    case T_NEGINT:
    case T_POOLED:
    case T_BACKREF:
      readVarint(b);
      return;
    case T_F64:
      cursor.pos += 8;
      return;
    case T_LATIN1:
    case T_UTF8:
    case T_UUID:
      cursor.pos -= 1;
      skipString(b);
      return;
    case T_ARRAY: {
      const n = readVarint(b);
      if (depth >= MAX_DEPTH) throw new CodecError("value nested too deeply");
      for (let i = 0; i < n; i += 1) skipValue(b, dict, depth + 1);
      return;
    }
    case T_OBJECT: {
      const fields = dict.shapes[readVarint(b)];
      if (fields === undefined) throw new CodecError("unknown shape");
      for (let i = 0; i < fields.length; i += 1) skipValue(b, dict, depth + 1);
      return;
    }
    case T_OBJECT_INLINE: {
      const n = readVarint(b);
      for (let i = 0; i < n; i += 1) {
        skipString(b);
        skipValue(b, dict, depth + 1);
      }
      return;
    }
    default:
      throw new CodecError(`unknown tag ${tag}`);
  }
}

/**
 * Where the value of top-level field `field` of the object at `pos` starts, or -1 when the value
 * is not an object of a known shape with that field.
 */
export function fieldAt(b: Buffer, pos: number, dict: Dictionary, field: string): number {
  if (b[pos] !== T_OBJECT) return -1;
  cursor.pos = pos + 1;
  const fields = dict.shapes[readVarint(b)];
  const index = fields ? fields.indexOf(field) : -1;
  if (index < 0) return -1;
  for (let i = 0; i < index; i += 1) skipValue(b, dict);
  return cursor.pos;
}

/**
 * The code units of the string value at `pos` (inline or pooled), written into `out`; -1 when it
 * is not one (a number, a reference to the key or to an earlier string: the caller decodes).
 */
export function stringUnitsAt(b: Buffer, pos: number, dict: Dictionary, out: Uint16Array): number {
  const tag = b[pos];
  if (tag === T_LATIN1 || tag === T_UUID) {
    const n = keyUnitsAt(b, pos, out);
    return n <= out.length ? n : -1;
  }
  if (tag === T_UTF8) {
    const s = readString(b, pos);
    if (s.length > out.length) return -1;
    return keyUnitsOfString(s, out);
  }
  if (tag === T_POOLED) {
    cursor.pos = pos + 1;
    const s = dict.strings[readVarint(b)];
    if (s === undefined || s.length > out.length) return -1;
    return keyUnitsOfString(s, out);
  }
  return -1;
}

/** Bytes of an encoded key that starts at `pos`. */
export function keyLengthAt(b: Uint8Array, pos: number): number {
  cursor.pos = pos;
  skipString(b);
  return cursor.pos - pos;
}

/** `a[ap..ap+n)` equals `b[bp..bp+n)`. */
export function sameBytes(a: Uint8Array, ap: number, b: Uint8Array, bp: number, n: number): boolean {
  for (let i = 0; i < n; i += 1) if (a[ap + i] !== b[bp + i]) return false;
  return true;
}

/**
 * Entries of `dict` from the given counts on: shapes, then pooled strings, then writers (a
 * catch-up's frames and the tables files' dictionary entries both carry them).
 */
export function writeDictionaryEntries(
  w: ByteWriter,
  dict: Dictionary,
  from: { shapes: number; strings: number; writers: number },
): void {
  w.varint(from.shapes);
  w.varint(dict.shapes.length - from.shapes);
  for (let i = from.shapes; i < dict.shapes.length; i += 1) {
    const fields = dict.shapes[i]!;
    w.varint(fields.length);
    for (const f of fields) w.string(f);
  }
  w.varint(from.strings);
  w.varint(dict.strings.length - from.strings);
  for (let i = from.strings; i < dict.strings.length; i += 1) w.string(dict.strings[i]!);
  w.varint(from.writers);
  w.varint(dict.writers.length - from.writers);
  for (let i = from.writers; i < dict.writers.length; i += 1) w.string(dict.writers[i]!);
}
