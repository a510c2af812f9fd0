/**
 * The tables files' framing (format 2): a 16-byte preamble (magic, format number, kind), then
 * checksummed blocks `[u32 payload length][u32 CRC-32 of type and payload][u8 type][payload]`.
 * A snapshot is HEADER, ENTRIES…, END; a change log is HEADER, one ENTRIES block per commit, and
 * NEXT when it continues in another log. Entries are dictionary additions, rows of a table (the
 * store's records, byte for byte) and meta values. Nothing here writes a file or decides a
 * refusal; `BlockReader` says what it found, down to the byte.
 */
import { open, type FileHandle } from "node:fs/promises";
import { crc32 } from "node:zlib";

export const FORMAT_VERSION = 2;
export const MAGIC = Buffer.from("PwdlsGs\0", "latin1");
export const SQLITE_MAGIC = Buffer.from("SQLite format 3\0", "latin1");
export const PREAMBLE_BYTES = 16;
/** where the format number sits: read before anything else, so a newer file is named as such */
export const FORMAT_OFFSET = 8;
const KIND_OFFSET = 12;
export const BLOCK_HEADER_BYTES = 9;
/** no block is larger: a commit bigger than this is written as several */
export const MAX_BLOCK_BYTES = 64 << 20;

export const enum FileKind {
  Snapshot = 1,
  Log = 2,
  /** a snapshot written by `backup`: no change log follows it */
  Backup = 3,
}

export const enum BlockType {
  Header = 1,
  Entries = 2,
  End = 3,
  Next = 4,
}

export const enum EntryKind {
  Dictionary = 1,
  Rows = 2,
  /** rows stored from a peer before their table had a schema: checked when it has one */
  UncheckedRows = 3,
  Meta = 4,
}

export interface HeaderMeta {
  cluster: string;
  /** the snapshot's generation; a log's own generation */
  generation: number;
  createdAt: string;
  /** a snapshot: the change log that must follow it (its generation), or none for a backup */
  log?: number;
  /** set on the first snapshot written from a format-1 file */
  migratedFrom?: string;
}

export function preamble(kind: FileKind): Buffer {
  const out = Buffer.alloc(PREAMBLE_BYTES);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(FORMAT_VERSION, FORMAT_OFFSET);
  out[KIND_OFFSET] = kind;
  return out;
}

/** Frame a block in place: `w` holds BLOCK_HEADER_BYTES of room at `start`, then the payload up to `end`. */
export function sealBlock(buf: Buffer, start: number, end: number, type: BlockType): void {
  buf.writeUInt32LE(end - start - BLOCK_HEADER_BYTES, start);
  buf[start + 8] = type;
  buf.writeUInt32LE(crc32(buf.subarray(start + 8, end)), start + 4);
}

export function block(type: BlockType, payload: Uint8Array): Buffer {
  const out = Buffer.alloc(BLOCK_HEADER_BYTES + payload.length);
  out.set(payload, BLOCK_HEADER_BYTES);
  sealBlock(out, 0, out.length, type);
  return out;
}

export function headerBlock(meta: HeaderMeta): Buffer {
  return block(BlockType.Header, Buffer.from(JSON.stringify(meta), "utf8"));
}

/** What is wrong with a file, as found; the caller words the refusal. */
export type FileProblem =
  { kind: "foreign"; what: string } | { kind: "newer-format"; format: number } | { kind: "damaged"; detail: string };

export class FileProblemError extends Error {
  constructor(readonly problem: FileProblem) {
    super(problem.kind === "damaged" ? problem.detail : problem.kind);
    this.name = "FileProblemError";
  }
}

/** Check a file's first 16 bytes: ours, of a format this version reads, of this kind. */
export function checkPreamble(head: Buffer, kinds: FileKind[]): FileKind {
  if (head.length < PREAMBLE_BYTES || !head.subarray(0, 8).equals(MAGIC)) {
    if (head.length >= 16 && head.subarray(0, 16).equals(SQLITE_MAGIC)) {
      throw new FileProblemError({ kind: "foreign", what: "an SQLite file" });
    }
    if (head.length === 0) throw new FileProblemError({ kind: "damaged", detail: "it is empty" });
    throw new FileProblemError({
      kind: "damaged",
      detail: head.length < PREAMBLE_BYTES ? "it is shorter than its preamble" : "it does not start as a tables file",
    });
  }
  const format = head.readUInt32LE(FORMAT_OFFSET);
  if (format > FORMAT_VERSION) throw new FileProblemError({ kind: "newer-format", format });
  if (format !== FORMAT_VERSION) {
    throw new FileProblemError({
      kind: "damaged",
      detail: `its format number ${format} is not one this version wrote`,
    });
  }
  const kind = head[KIND_OFFSET] as FileKind;
  if (!kinds.includes(kind))
    throw new FileProblemError({ kind: "damaged", detail: `it is not of the expected kind (${kind})` });
  return kind;
}

export interface Block {
  type: BlockType;
  /** the buffer holding the payload (valid until the next read), and where in it */
  buf: Buffer;
  start: number;
  end: number;
  /** the block's offset in the file */
  offset: number;
}

const CHUNK = 16 << 20;

/**
 * Reads a file's blocks in order, in chunks of 16 MiB (so a 300 MB snapshot is never one
 * buffer), checking each block's CRC. `next()` gives undefined at a clean end; `tornAt` is set
 * when the file ends inside a block (a write cut short by a crash, never acknowledged) or in
 * zeros. A block whose bytes are all there but whose CRC does not match is damage: it throws.
 */
export class BlockReader {
  private buf = Buffer.allocUnsafeSlow(CHUNK);
  private bufStart = 0;
  private bufEnd = 0;
  /** file offset of buf[0] */
  private base = PREAMBLE_BYTES;
  private offset = PREAMBLE_BYTES;
  /** where the file stops making sense when it ends in a torn block; undefined at a clean end */
  tornAt: number | undefined;
  readonly size: number;

  private constructor(
    private readonly handle: FileHandle,
    size: number,
    readonly kind: FileKind,
    readonly path: string,
  ) {
    this.size = size;
  }

  /** Open a file read-only and check its preamble. Throws FileProblemError, or the open's own error. */
  static async open(path: string, kinds: FileKind[]): Promise<BlockReader> {
    const handle = await open(path, "r");
    try {
      const { size } = await handle.stat();
      const head = Buffer.alloc(Math.min(PREAMBLE_BYTES, size));
      await handle.read(head, 0, head.length, 0);
      const kind = checkPreamble(head, kinds);
      return new BlockReader(handle, size, kind, path);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Bytes read so far (the end of the last good block). */
  get position(): number {
    return this.offset;
  }

  async next(): Promise<Block | undefined> {
    if (this.offset >= this.size) return undefined;
    if (this.size - this.offset < BLOCK_HEADER_BYTES) return this.torn();
    await this.fill(BLOCK_HEADER_BYTES);
    const at = this.bufStart;
    const length = this.buf.readUInt32LE(at);
    const crc = this.buf.readUInt32LE(at + 4);
    const type = this.buf[at + 8] as BlockType;
    if (length === 0 && crc === 0 && (type as number) === 0) return this.zeros();
    if (length > MAX_BLOCK_BYTES) {
      if (await this.restIsZero()) return this.torn();
      throw this.damaged(`a block at byte ${this.offset} claims ${length} bytes`);
    }
    const total = BLOCK_HEADER_BYTES + length;
    if (this.size - this.offset < total) return this.torn();
    await this.fill(total);
    const start = this.bufStart;
    if (crc32(this.buf.subarray(start + 8, start + total)) !== crc) {
      if (await this.restIsZero(start + 8)) return this.torn();
      throw this.damaged(`the block at byte ${this.offset} fails its checksum`);
    }
    const blockAt = this.offset;
    this.bufStart += total;
    this.offset += total;
    return { type, buf: this.buf, start: start + BLOCK_HEADER_BYTES, end: start + total, offset: blockAt };
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  private damaged(detail: string): FileProblemError {
    return new FileProblemError({ kind: "damaged", detail });
  }

  private torn(): undefined {
    this.tornAt = this.offset;
    this.offset = this.size;
    return undefined;
  }

  private async zeros(): Promise<undefined> {
    if (await this.restIsZero()) return this.torn();
    throw this.damaged(`the block at byte ${this.offset} is zeros, with data after it`);
  }

  /** From the current block (or `from` in the buffer) to the end of the file, is everything zero? */
  private async restIsZero(from = this.bufStart): Promise<boolean> {
    let position = this.base + from;
    const probe = Buffer.allocUnsafe(1 << 16);
    while (position < this.size) {
      const { bytesRead } = await this.handle.read(probe, 0, Math.min(probe.length, this.size - position), position);
      if (bytesRead <= 0) break;
      for (let i = 0; i < bytesRead; i += 1) if (probe[i] !== 0) return false;
      position += bytesRead;
    }
    return true;
  }

  /** Make `n` bytes from the current offset available at `buf[bufStart…]`. */
  private async fill(n: number): Promise<void> {
    if (this.bufEnd - this.bufStart >= n) return;
    if (n > this.buf.length) {
      const bigger = Buffer.allocUnsafeSlow(n);
      this.buf.copy(bigger, 0, this.bufStart, this.bufEnd);
      this.bufEnd -= this.bufStart;
      this.base += this.bufStart;
      this.bufStart = 0;
      this.buf = bigger;
    } else if (this.bufStart > 0) {
      this.buf.copy(this.buf, 0, this.bufStart, this.bufEnd);
      this.bufEnd -= this.bufStart;
      this.base += this.bufStart;
      this.bufStart = 0;
    }
    while (this.bufEnd - this.bufStart < n) {
      const position = this.base + this.bufEnd;
      const want = Math.min(this.buf.length - this.bufEnd, this.size - position);
      const { bytesRead } = await this.handle.read(this.buf, this.bufEnd, want, position);
      if (bytesRead <= 0) throw this.damaged(`it ends at byte ${position}, inside a block`);
      this.bufEnd += bytesRead;
    }
  }
}
