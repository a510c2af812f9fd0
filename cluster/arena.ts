/**
 * Where a table's records live: bytes in pages outside the JS heap, addressed by a 32-bit number
 * (page index, offset). Pages start small (a table of ten rows costs kilobytes) and double up to
 * 4 MiB, so growing never copies what is there; a record that outgrows a page gets one of its
 * own. Replaced records leave dead bytes behind; `sparsePages` names the pages worth emptying
 * (the store moves their live records to the tail), and a page with nothing live is given back.
 */

const OFFSET_BITS = 22;
export const PAGE_BYTES = 1 << OFFSET_BITS;
const MAX_PAGES = 1 << (32 - OFFSET_BITS);
const FIRST_PAGE = 4096;

export interface ArenaState {
  pages: Array<ArrayBuffer | null>;
  used: number[];
  live: number[];
  tail: number;
  lastSize: number;
  freeIndexes: number[];
  liveBytes: number;
  pageBytes: number;
}

export class Arena {
  pages: Array<Buffer | undefined> = [];
  /** per page: bytes handed out, and bytes still part of a live record */
  private used: number[] = [];
  private live: number[] = [];
  private tail = -1;
  private lastSize = 0;
  private readonly freeIndexes: number[] = [];
  /** bytes in live records, and in pages (what the process holds) */
  liveBytes = 0;
  pageBytes = 0;

  /** Room for `n` bytes; returns the address. */
  alloc(n: number): number {
    if (n > PAGE_BYTES / 4) return this.dedicated(n);
    let tail = this.tail;
    if (tail < 0 || this.used[tail]! + n > this.pages[tail]!.length) tail = this.newPage(n);
    const offset = this.used[tail]!;
    this.used[tail] = offset + n;
    this.live[tail]! += n;
    this.liveBytes += n;
    return tail * PAGE_BYTES + offset;
  }

  page(address: number): Buffer {
    return this.pages[address >>> OFFSET_BITS]!;
  }

  /** `n` bytes at `address` are no longer part of a record. */
  release(address: number, n: number): void {
    const index = address >>> OFFSET_BITS;
    const live = this.live[index]! - n;
    this.live[index] = live;
    this.liveBytes -= n;
    if (live === 0 && index !== this.tail) this.freePage(index);
  }

  /** Pages (not the tail) under 70 % live records: emptying them gives memory back. */
  sparsePages(): Set<number> {
    const out = new Set<number>();
    for (let i = 0; i < this.pages.length; i += 1) {
      if (i === this.tail || this.pages[i] === undefined) continue;
      if (this.live[i]! * 10 < this.used[i]! * 7) out.add(i);
    }
    return out;
  }

  /** Dead bytes in pages: what a compaction would give back at most. */
  get deadBytes(): number {
    let dead = 0;
    for (let i = 0; i < this.pages.length; i += 1) if (this.pages[i]) dead += this.used[i]! - this.live[i]!;
    return dead;
  }

  /** What it holds, to hand to another thread (the pages' memory moves with the transfer). */
  export(): ArenaState {
    return {
      // a page is a whole ArrayBuffer (allocUnsafeSlow): it is handed over, not copied
      pages: this.pages.map((p) =>
        !p
          ? null
          : p.byteOffset === 0 && p.length === p.buffer.byteLength
            ? (p.buffer as ArrayBuffer)
            : new Uint8Array(p).buffer,
      ),
      used: [...this.used],
      live: [...this.live],
      tail: this.tail,
      lastSize: this.lastSize,
      freeIndexes: [...this.freeIndexes],
      liveBytes: this.liveBytes,
      pageBytes: this.pageBytes,
    };
  }

  /** An arena holding what another thread's held (see `export`). */
  static adopt(state: ArenaState): Arena {
    const arena = new Arena();
    arena.pages = state.pages.map((b) => (b ? Buffer.from(b) : undefined));
    arena.used = state.used;
    arena.live = state.live;
    arena.tail = state.tail;
    arena.lastSize = state.lastSize;
    arena.freeIndexes.push(...state.freeIndexes);
    arena.liveBytes = state.liveBytes;
    arena.pageBytes = state.pageBytes;
    return arena;
  }

  static pageOf(address: number): number {
    return address >>> OFFSET_BITS;
  }

  static offsetOf(address: number): number {
    return address & (PAGE_BYTES - 1);
  }

  private newPage(n: number): number {
    const size = Math.min(PAGE_BYTES, Math.max(FIRST_PAGE, this.lastSize * 2, n));
    this.lastSize = size;
    const index = this.place(Buffer.allocUnsafeSlow(size));
    // the previous tail may hold nothing live any more: it was kept only because it was the tail
    const previous = this.tail;
    this.tail = index;
    if (previous >= 0 && this.live[previous] === 0) this.freePage(previous);
    return index;
  }

  private dedicated(n: number): number {
    const index = this.place(Buffer.allocUnsafeSlow(n));
    this.used[index] = n;
    this.live[index] = n;
    this.liveBytes += n;
    return index * PAGE_BYTES;
  }

  private place(buffer: Buffer): number {
    const index = this.freeIndexes.pop() ?? this.pages.length;
    if (index >= MAX_PAGES) throw new RangeError("a table's records outgrew 4 GiB");
    this.pages[index] = buffer;
    this.used[index] = 0;
    this.live[index] = 0;
    this.pageBytes += buffer.length;
    return index;
  }

  private freePage(index: number): void {
    this.pageBytes -= this.pages[index]!.length;
    this.pages[index] = undefined;
    this.used[index] = 0;
    this.live[index] = 0;
    this.freeIndexes.push(index);
  }
}
