/**
 * The entries inside a tables file's blocks: dictionary additions, a table's rows (the store's
 * records, byte for byte) and meta values. Written into a ByteWriter by the commit, the snapshot
 * and the backup; read back by `readEntries`, which hands each to the store.
 */
import {
  ByteWriter,
  CodecError,
  cursor,
  readString,
  readVarint,
  writeDictionaryEntries,
  type Dictionary,
} from "../codec";
import { type ClusterStore, type DictionaryMapping } from "../store";
import { EntryKind } from "./blocks";

/** How much of a dictionary has been written to a file so far. */
export interface DictionaryMark {
  shapes: number;
  strings: number;
  writers: number;
}

export const newMark = (): DictionaryMark => ({ shapes: 0, strings: 0, writers: 0 });

/** A dictionary entry for what `dict` holds beyond `mark` (nothing when nothing is new); moves the mark. */
export function writeDictionary(w: ByteWriter, dict: Dictionary, mark: DictionaryMark): void {
  if (
    mark.shapes === dict.shapes.length &&
    mark.strings === dict.strings.length &&
    mark.writers === dict.writers.length
  ) {
    return;
  }
  w.u8(EntryKind.Dictionary);
  writeDictionaryEntries(w, dict, mark);
  mark.shapes = dict.shapes.length;
  mark.strings = dict.strings.length;
  mark.writers = dict.writers.length;
}

/** Start a rows entry of `table`; returns where its byte count goes (`endRows` fills it in). */
export function beginRows(w: ByteWriter, table: string, unchecked: boolean): number {
  w.u8(unchecked ? EntryKind.UncheckedRows : EntryKind.Rows);
  w.string(table);
  const at = w.pos;
  w.u32(0);
  return at;
}

export function endRows(w: ByteWriter, at: number): void {
  w.buf.writeUInt32LE(w.pos - at - 4, at);
}

export function writeMeta(w: ByteWriter, values: Map<string, string | undefined>): void {
  if (values.size === 0) return;
  w.u8(EntryKind.Meta);
  w.varint(values.size);
  for (const [key, value] of values) {
    w.string(key);
    if (value === undefined) w.u8(0);
    else {
      w.u8(1);
      w.string(value);
    }
  }
}

export interface EntryTarget {
  store: ClusterStore;
  mapping: DictionaryMapping;
  meta: Map<string, string>;
  /** called every row, so a long block can yield (it cannot await: the block stays in the buffer) */
  rows: number;
  refused: number;
  /**
   * While a snapshot is read: per table, whether it was empty when its rows began (a snapshot
   * holds each key once, so they need no lookup). Undefined while logs are read.
   */
  fresh: Map<string, boolean> | undefined;
}

/**
 * Apply the entries of one block (`b[start…end)`) to the store, as this node's own rows
 * ("restore": trusted, taken byte for byte). Dictionary entries may repeat ones already read
 * (a snapshot written after a log began holds them too): those must match.
 */
export function readEntries(b: Buffer, start: number, end: number, target: EntryTarget): void {
  cursor.pos = start;
  while (cursor.pos < end) {
    const kind = b[cursor.pos++] as EntryKind;
    if (kind === EntryKind.Dictionary) readDictionary(b, target.mapping);
    else if (kind === EntryKind.Rows || kind === EntryKind.UncheckedRows) {
      const table = readString(b);
      const bytes = b.readUInt32LE(cursor.pos);
      cursor.pos += 4;
      const stop = cursor.pos + bytes;
      if (stop > end) throw new CodecError("a rows entry runs past its block");
      const unchecked = kind === EntryKind.UncheckedRows;
      let fresh = false;
      if (target.fresh) {
        let known = target.fresh.get(table);
        if (known === undefined) {
          known = target.store.digestOf(table).count === 0;
          target.fresh.set(table, known);
        }
        fresh = known;
      }
      let pos = cursor.pos;
      while (pos < stop) {
        cursor.pos = pos;
        const next = readVarint(b) + cursor.pos;
        if (next > stop) throw new CodecError("a record runs past its entry");
        if (target.store.applyEncoded(table, b, pos, target.mapping, "restore", unchecked, fresh) === "rejected") {
          target.refused += 1;
        } else target.rows += 1;
        pos = next;
      }
      cursor.pos = stop;
    } else if (kind === EntryKind.Meta) {
      const n = readVarint(b);
      for (let i = 0; i < n; i += 1) {
        const key = readString(b);
        const present = b[cursor.pos++];
        if (present === 1) target.meta.set(key, readString(b));
        else target.meta.delete(key);
      }
    } else throw new CodecError(`unknown entry ${kind}`);
  }
  if (cursor.pos !== end) throw new CodecError("entries run past their block");
}

function readDictionary(b: Buffer, mapping: DictionaryMapping): void {
  const { theirs } = mapping;
  const section = (
    have: () => number,
    read: () => unknown,
    same: (i: number, v: unknown) => boolean,
    add: (v: unknown) => void,
  ) => {
    const from = readVarint(b);
    const count = readVarint(b);
    if (from > have()) throw new CodecError(`dictionary entries skip from ${have()} to ${from}`);
    for (let i = 0; i < count; i += 1) {
      const value = read();
      const id = from + i;
      if (id < have()) {
        if (!same(id, value)) throw new CodecError(`dictionary entry ${id} differs from the one read before`);
      } else add(value);
    }
  };
  section(
    () => theirs.shapes.length,
    () => {
      const n = readVarint(b);
      if (n > 4096) throw new CodecError("a shape with too many fields");
      const fields: string[] = [];
      for (let i = 0; i < n; i += 1) fields.push(readString(b));
      return fields;
    },
    (i, v) => {
      const a = theirs.shapes[i]!;
      const f = v as string[];
      return a.length === f.length && a.every((x, j) => x === f[j]);
    },
    (v) => mapping.addShape(v as string[]),
  );
  section(
    () => theirs.strings.length,
    () => readString(b),
    (i, v) => theirs.strings[i] === v,
    (v) => mapping.addString(v as string),
  );
  section(
    () => theirs.writers.length,
    () => readString(b),
    (i, v) => theirs.writers[i] === v,
    (v) => mapping.addWriter(v as string),
  );
}
