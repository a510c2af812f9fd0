/** Long work in slices that yield to the event loop: catch-up, reading the tables files. */

/** Lets other work run: a macrotask turn, not a microtask, so timers and sockets get theirs. */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Counts work and says when the current slice has run for `sliceMs` (checking the clock every 64 units). */
export class Slicer {
  private started = performance.now();
  private steps = 0;
  constructor(private readonly sliceMs: number) {}
  /** call once per unit of work: true when the slice is over (then `pause`) */
  due(): boolean {
    this.steps += 1;
    if ((this.steps & 63) !== 0) return false;
    return performance.now() - this.started >= this.sliceMs;
  }
  /** true when the slice is over, checking the clock now (for units of work of a millisecond or so) */
  over(): boolean {
    return performance.now() - this.started >= this.sliceMs;
  }
  async pause(): Promise<void> {
    await yieldToEventLoop();
    this.started = performance.now();
  }
  /** `due` and `pause` in one: awaits only when a slice is over */
  async step(): Promise<void> {
    if (this.due()) await this.pause();
  }
}
