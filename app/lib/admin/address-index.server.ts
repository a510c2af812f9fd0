/**
 * Every claimed address in order, for the admin search by prefix: sorted blocks of at most
 * BLOCK addresses (an insert moves at most a block, not a million entries), kept up to date from
 * the claims table's changes and built at start in slices that yield to the event loop.
 */
import type { Table } from "#cluster";

const BLOCK = 512;

/** A set of strings in order, in blocks; `from(start)` walks it from the first string ≥ start. */
export class SortedStrings {
  private blocks: string[][] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(value: string): void {
    if (this.blocks.length === 0) {
      this.blocks.push([value]);
      this.count = 1;
      return;
    }
    const b = this.blockFor(value);
    const block = this.blocks[b]!;
    const i = lowerBound(block, value);
    if (block[i] === value) return;
    block.splice(i, 0, value);
    this.count += 1;
    if (block.length > BLOCK * 2) this.blocks.splice(b, 1, block.slice(0, BLOCK), block.slice(BLOCK));
  }

  delete(value: string): void {
    if (this.blocks.length === 0) return;
    const b = this.blockFor(value);
    const block = this.blocks[b]!;
    const i = lowerBound(block, value);
    if (block[i] !== value) return;
    block.splice(i, 1);
    this.count -= 1;
    if (block.length === 0) this.blocks.splice(b, 1);
  }

  /** Strings ≥ `start`, in order. */
  *from(start: string): IterableIterator<string> {
    if (this.blocks.length === 0) return;
    let b = this.blockFor(start);
    let i = lowerBound(this.blocks[b]!, start);
    for (; b < this.blocks.length; b += 1, i = 0) {
      const block = this.blocks[b]!;
      for (; i < block.length; i += 1) yield block[i]!;
    }
  }

  /** The block whose range holds `value`: the last block whose first string is ≤ value. */
  private blockFor(value: string): number {
    let lo = 0;
    let hi = this.blocks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.blocks[mid]![0]! <= value) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

function lowerBound(block: string[], value: string): number {
  let lo = 0;
  let hi = block.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (block[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The addresses of a claims table, in order; `ready` resolves once the start-up build has seen every row. */
export class AddressIndex {
  readonly sorted = new SortedStrings();
  readonly ready: Promise<void>;
  private built = false;

  constructor(claims: Table<unknown>, options: { sliceMs?: number } = {}) {
    // changes first: a row that changes while the build runs is then right either way (add is idempotent)
    claims.onChange(({ key, value }) => {
      if (value === undefined) this.sorted.delete(key);
      else this.sorted.add(key);
    });
    this.ready = this.build(claims, options.sliceMs ?? 15);
  }

  get isBuilt(): boolean {
    return this.built;
  }

  private async build(claims: Table<unknown>, sliceMs: number): Promise<void> {
    const rows = claims.scan();
    for (;;) {
      const until = performance.now() + sliceMs;
      let step = rows.next();
      while (!step.done) {
        // a key deleted since the walk began is not yielded by scan(); one seen is live now
        if (claims.has(step.value[0])) this.sorted.add(step.value[0]);
        if (performance.now() > until) break;
        step = rows.next();
      }
      if (step.done) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.built = true;
  }
}
