/**
 * Checking a row in its binary form against what its table accepts, without building it: a
 * catch-up brings millions of rows, and building each as objects to check them cost more than
 * everything else the joiner does. A table's schema may describe its values as a `ValueSpec`
 * (plain data: the app derives it from its zod schema); `compileSpec` turns that into a check
 * that walks a value's bytes. It answers true only when the schema would accept the value as it
 * is (no default to fill in, no unknown field to drop); false sends the row the slow way (built,
 * parsed by the schema, encoded again), so a check that is too strict costs time, never rows.
 */
import {
  CodecError,
  cursor,
  readString,
  readVarint,
  skipValue,
  T_ARRAY,
  T_BACKREF,
  T_F64,
  T_FALSE,
  T_KEY,
  T_LATIN1,
  T_NEGINT,
  T_NULL,
  T_OBJECT,
  T_POOLED,
  T_SMALL,
  T_TRUE,
  T_UINT,
  T_UTF8,
  T_UUID,
  type Dictionary,
} from "./codec";

/** What a table accepts, as data: the parts of zod the app's tables use. */
export type ValueSpec =
  | { type: "string"; min?: number; max?: number; patterns?: RegExp[] }
  | { type: "number"; int?: boolean; min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean }
  | { type: "boolean" }
  | { type: "null" }
  | { type: "literal"; value: string | number | boolean | null }
  | { type: "enum"; values: Array<string | number> }
  | { type: "optional"; of: ValueSpec }
  | { type: "nullable"; of: ValueSpec }
  | { type: "array"; of: ValueSpec; min?: number; max?: number }
  | { type: "object"; fields: Record<string, ValueSpec> };

/**
 * Checks the value at `cursor.pos` of `b` (ids of `dict`), moving the cursor past it; the row's
 * key is the encoded string at `keyAt` of `keyIn` (read only by a check that needs its characters).
 */
export type BytesCheck = (b: Buffer, dict: Dictionary, keyIn: Buffer, keyAt: number) => boolean;

/** The pattern the app checks UUIDs with: every 16-byte UUID in a record passes it. */
const UUID_SOURCE = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

type Node = (b: Buffer, tag: number) => boolean;

/** where the strings written inline so far in the value being checked are (what a back-reference points at) */
const inline = new Int32Array(32);
let inlineCount = 0;
let checkDict: Dictionary;
let keyIn: Buffer;
let keyAt = 0;
let keyRead: string | undefined;

function keyString(): string {
  if (keyRead === undefined) {
    const back = cursor.pos;
    keyRead = readString(keyIn, keyAt);
    cursor.pos = back;
  }
  return keyRead;
}

function remember(at: number): void {
  if (inlineCount < 32) inline[inlineCount++] = at;
}

/** The length of the string a back-reference points at, when known without reading it (-1: read it). */
function backrefLength(b: Buffer): number {
  const i = readVarint(b);
  if (i >= inlineCount) throw new CodecError("bad back-reference");
  const at = inline[i]!;
  const tag = b[at];
  if (tag === T_UUID) return 36;
  if (tag !== T_LATIN1) return -1;
  const back = cursor.pos;
  cursor.pos = at + 1;
  const n = readVarint(b);
  cursor.pos = back;
  return n;
}

/** The string at a string tag (just read), for checks that need its characters. */
function stringAt(b: Buffer, tag: number): string {
  if (tag === T_KEY) return keyString();
  if (tag === T_POOLED) {
    const s = checkDict.strings[readVarint(b)];
    if (s === undefined) throw new CodecError("unknown pooled string");
    return s;
  }
  if (tag === T_BACKREF) {
    const i = readVarint(b);
    if (i >= inlineCount) throw new CodecError("bad back-reference");
    const back = cursor.pos;
    const s = readString(b, inline[i]!);
    cursor.pos = back;
    return s;
  }
  const start = cursor.pos - 1;
  const s = readString(b, start);
  if (s.length >= 6) remember(start);
  return s;
}

function compileString(spec: Extract<ValueSpec, { type: "string" }>): Node {
  const min = spec.min ?? 0;
  const max = spec.max ?? Infinity;
  const patterns = (spec.patterns ?? []).map((p) => new RegExp(p.source, p.flags.replace("g", "")));
  const uuidOnly = patterns.length === 1 && patterns[0]!.source === UUID_SOURCE;
  const fits = (s: string) => s.length >= min && s.length <= max && patterns.every((p) => p.test(s));
  return (b, tag) => {
    const at = cursor.pos - 1;
    if (uuidOnly && min <= 36 && max >= 36) {
      if (tag === T_UUID) {
        remember(at);
        cursor.pos += 16;
        return true;
      }
      // the row's key, held as 16 bytes: a canonical UUID
      if (tag === T_KEY && keyIn[keyAt] === T_UUID) return true;
    }
    if (patterns.length === 0) {
      if (tag === T_LATIN1) {
        const n = readVarint(b);
        if (n >= 6) remember(at);
        cursor.pos += n;
        return n >= min && n <= max;
      }
      if (tag === T_BACKREF) {
        const back = cursor.pos;
        const n = backrefLength(b);
        if (n >= 0) return n >= min && n <= max;
        cursor.pos = back;
      }
    }
    if (
      tag !== T_LATIN1 &&
      tag !== T_UTF8 &&
      tag !== T_UUID &&
      tag !== T_POOLED &&
      tag !== T_KEY &&
      tag !== T_BACKREF
    ) {
      return false;
    }
    return fits(stringAt(b, tag));
  };
}

function numberAt(b: Buffer, tag: number): number | undefined {
  if (tag >= T_SMALL) return tag - T_SMALL;
  if (tag === T_UINT) return readVarint(b);
  if (tag === T_NEGINT) return -readVarint(b) - 1;
  if (tag === T_F64) {
    const v = b.readDoubleLE(cursor.pos);
    cursor.pos += 8;
    return v;
  }
  return undefined;
}

function compileNumber(spec: Extract<ValueSpec, { type: "number" }>): Node {
  const min = spec.min ?? -Infinity;
  const max = spec.max ?? Infinity;
  return (b, tag) => {
    const v = numberAt(b, tag);
    if (v === undefined || !Number.isFinite(v)) return false;
    if (spec.int && !Number.isInteger(v)) return false;
    if (spec.minExclusive ? v <= min : v < min) return false;
    if (spec.maxExclusive ? v >= max : v > max) return false;
    return true;
  };
}

interface Field {
  name: string;
  check: Node;
  /** may be missing */
  optional: boolean;
}

function compileObject(spec: Extract<ValueSpec, { type: "object" }>): Node {
  const fields = new Map<string, Field>();
  for (const [name, field] of Object.entries(spec.fields)) {
    fields.set(name, { name, check: compileNode(field), optional: field.type === "optional" });
  }
  const required = [...fields.values()].filter((f) => !f.optional).length;
  // per shape (a list of field names, one array per dictionary entry): its fields' checks, in its order
  const plans = new WeakMap<string[], Node[] | null>();
  const planOf = (shape: string[]): Node[] | null => {
    let plan = plans.get(shape);
    if (plan !== undefined) return plan;
    let present = 0;
    const checks: Node[] = [];
    for (const name of shape) {
      const field = fields.get(name);
      // a field the schema does not know would be dropped by parse: not "as it is"
      if (!field) {
        plans.set(shape, null);
        return null;
      }
      if (!field.optional) present += 1;
      checks.push(field.check);
    }
    plan = present === required ? checks : null;
    plans.set(shape, plan);
    return plan;
  };
  return (b, tag) => {
    if (tag !== T_OBJECT) return false;
    const shape = checkDict.shapes[readVarint(b)];
    if (!shape) throw new CodecError("unknown shape");
    const plan = planOf(shape);
    if (!plan) return false;
    for (let i = 0; i < plan.length; i += 1) if (!plan[i]!(b, b[cursor.pos++]!)) return false;
    return true;
  };
}

function compileNode(spec: ValueSpec): Node {
  switch (spec.type) {
    case "string":
      return compileString(spec);
    case "number":
      return compileNumber(spec);
    case "boolean":
      return (_b, tag) => tag === T_TRUE || tag === T_FALSE;
    case "null":
      return (_b, tag) => tag === T_NULL;
    case "literal": {
      const value = spec.value;
      if (value === null) return (_b, tag) => tag === T_NULL;
      if (typeof value === "boolean") return (_b, tag) => tag === (value ? T_TRUE : T_FALSE);
      if (typeof value === "number") return (b, tag) => numberAt(b, tag) === value;
      return (b, tag) => isStringTag(tag) && stringAt(b, tag) === value;
    }
    case "enum": {
      const values = new Set<unknown>(spec.values);
      return (b, tag) => {
        if (isStringTag(tag)) return values.has(stringAt(b, tag));
        const n = numberAt(b, tag);
        return n !== undefined && values.has(n);
      };
    }
    case "optional": {
      // present in a shape means defined: its value must pass the inner check
      return compileNode(spec.of);
    }
    case "nullable": {
      const inner = compileNode(spec.of);
      return (b, tag) => tag === T_NULL || inner(b, tag);
    }
    case "array": {
      const item = compileNode(spec.of);
      const min = spec.min ?? 0;
      const max = spec.max ?? Infinity;
      return (b, tag) => {
        if (tag !== T_ARRAY) return false;
        const n = readVarint(b);
        if (n < min || n > max) return false;
        for (let i = 0; i < n; i += 1) if (!item(b, b[cursor.pos++]!)) return false;
        return true;
      };
    }
    case "object":
      return compileObject(spec);
  }
}

function isStringTag(tag: number): boolean {
  return tag === T_LATIN1 || tag === T_UTF8 || tag === T_UUID || tag === T_POOLED || tag === T_KEY || tag === T_BACKREF;
}

/** A check of values in their binary form against `spec`; throws CodecError on bytes that are not a value. */
export function compileSpec(spec: ValueSpec): BytesCheck {
  const root = compileNode(spec);
  return (b, dict, keySource, keyStart) => {
    checkDict = dict;
    keyIn = keySource;
    keyAt = keyStart;
    keyRead = undefined;
    inlineCount = 0;
    const start = cursor.pos;
    const ok = root(b, b[cursor.pos++]!);
    if (!ok) {
      // leave the cursor past the value, whatever stopped the check
      cursor.pos = start;
      skipValue(b, dict);
    }
    return ok;
  };
}
