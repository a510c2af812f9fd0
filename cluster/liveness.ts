/**
 * Whether each connected peer is answering, known within about two seconds and apart from the
 * catch-up streams: every `intervalMs` this node sends an 8-byte heartbeat on one long-lived
 * stream per peer, and the peer echoes it. A peer silent for `downAfterMs` is marked down; a
 * closed connection marks it down at once. Down is a view, not an act: the connection and
 * whatever runs on it (a million-row catch-up) stay open, and the next echo marks the peer up
 * again, so a peer whose event loop is busy for a moment costs a moment of "down", never a cut.
 */
import type { Stream } from "@libp2p/interface";
import { lpStream, type LengthPrefixedStream } from "it-length-prefixed-stream";

export interface LivenessOptions {
  /** heartbeat period */
  intervalMs: number;
  /** silence after which a peer is marked down */
  downAfterMs: number;
}

export const DEFAULT_LIVENESS: LivenessOptions = { intervalMs: 250, downAfterMs: 1_500 };

export type DownReason = "closed" | "silent";

export interface LivenessDeps {
  /** a new stream of the heartbeat protocol to a connected peer */
  open(peerId: string, signal: AbortSignal): Promise<Stream>;
  now(): number;
  /** a peer went down (closed: its connection; silent: no echo for `silentMs`) or came back up */
  changed(peerId: string, up: boolean, reason: DownReason | "answered", silentMs: number): void;
}

export interface PeerLiveness {
  up: boolean;
  /** ms since the peer was last heard from (a heartbeat or an echo) */
  silentMs: number;
  /** the last heartbeat's round trip */
  rttMs: number | null;
}

interface Watched {
  heardAt: number;
  up: boolean;
  rttMs: number | null;
  controller: AbortController;
  lp?: LengthPrefixedStream<Stream>;
  writing: boolean;
  opening: boolean;
  /** the peer does not speak the heartbeat protocol (an older version): up while connected */
  legacy: boolean;
}

const FRAME_BYTES = 8;
const OPEN_TIMEOUT_MS = 5_000;

export class Liveness {
  private readonly peers = new Map<string, Watched>();
  private readonly lifetime = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;
  /** times a peer was marked down (silent or closed) and back up */
  readonly counters = { down: 0, up: 0 };

  constructor(
    private readonly options: LivenessOptions,
    private readonly deps: LivenessDeps,
  ) {}

  start(): void {
    this.lastTick = this.deps.now();
    this.timer = setInterval(() => this.tick(), this.options.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.lifetime.abort();
    for (const watched of this.peers.values()) watched.controller.abort();
    this.peers.clear();
  }

  /** A connection to the peer opened: it is up, and heartbeats start. */
  watch(peerId: string): void {
    if (this.lifetime.signal.aborted) return;
    let watched = this.peers.get(peerId);
    if (!watched) {
      watched = {
        heardAt: this.deps.now(),
        up: true,
        rttMs: null,
        controller: new AbortController(),
        writing: false,
        opening: false,
        legacy: false,
      };
      this.peers.set(peerId, watched);
    } else this.heard(peerId, watched);
    void this.openStream(peerId, watched);
  }

  /** The peer's last connection closed: down at once. */
  forget(peerId: string): void {
    const watched = this.peers.get(peerId);
    if (!watched) return;
    this.peers.delete(peerId);
    watched.controller.abort();
    if (watched.up) {
      this.counters.down += 1;
      this.deps.changed(peerId, false, "closed", this.deps.now() - watched.heardAt);
    }
  }

  isUp(peerId: string): boolean {
    return this.peers.get(peerId)?.up ?? false;
  }

  /** Watched and marked down (a peer whose connection event is still on its way is not down). */
  isDown(peerId: string): boolean {
    return this.peers.get(peerId)?.up === false;
  }

  /** Connected peers answering now. */
  upPeers(): string[] {
    return [...this.peers].filter(([, w]) => w.up).map(([id]) => id);
  }

  view(peerId: string): PeerLiveness | undefined {
    const watched = this.peers.get(peerId);
    if (!watched) return undefined;
    return { up: watched.up, silentMs: Math.max(0, this.deps.now() - watched.heardAt), rttMs: watched.rttMs };
  }

  /** Echo a peer's heartbeats back; hearing them also tells us it is there. */
  async serve(stream: Stream, from: string): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: FRAME_BYTES });
    try {
      for (;;) {
        const frame = await lp.read({ signal: this.lifetime.signal });
        const watched = this.peers.get(from);
        if (watched) this.heard(from, watched);
        await lp.write(frame, { signal: this.lifetime.signal });
      }
    } catch {
      stream.abort(new Error("heartbeat stream ended"));
    }
  }

  private async openStream(peerId: string, watched: Watched): Promise<void> {
    if (watched.lp || watched.opening || watched.legacy || watched.controller.signal.aborted) return;
    watched.opening = true;
    let lp: LengthPrefixedStream<Stream>;
    const signal = AbortSignal.any([this.lifetime.signal, watched.controller.signal]);
    try {
      const stream = await this.deps.open(peerId, AbortSignal.any([signal, AbortSignal.timeout(OPEN_TIMEOUT_MS)]));
      signal.addEventListener("abort", () => stream.abort(new Error("peer forgotten")), { once: true });
      lp = lpStream(stream, { maxDataLength: FRAME_BYTES });
      watched.lp = lp;
    } catch (error) {
      // the next tick tries again while the peer is connected; silence meanwhile counts
      if ((error as Error).name === "UnsupportedProtocolError") watched.legacy = true;
      return;
    } finally {
      watched.opening = false;
    }
    try {
      for (;;) {
        const echo = (await lp.read({ signal })).subarray();
        if (echo.byteLength === FRAME_BYTES) {
          const sentAt = new DataView(echo.buffer, echo.byteOffset, FRAME_BYTES).getFloat64(0);
          watched.rttMs = Math.max(0, Math.round(performance.now() - sentAt));
        }
        this.heard(peerId, watched);
      }
    } catch {
      if (watched.lp === lp) watched.lp = undefined;
    }
  }

  private heard(peerId: string, watched: Watched): void {
    const now = this.deps.now();
    const silentMs = now - watched.heardAt;
    watched.heardAt = now;
    if (watched.up) return;
    watched.up = true;
    this.counters.up += 1;
    this.deps.changed(peerId, true, "answered", silentMs);
  }

  private tick(): void {
    const now = this.deps.now();
    // this node's own event loop was held: echoes that arrived meanwhile are not read yet, so
    // silence is not judged on this turn (a stalled observer must not call everyone down)
    const late = now - this.lastTick > this.options.intervalMs * 3;
    this.lastTick = now;
    const frame = new Uint8Array(FRAME_BYTES);
    new DataView(frame.buffer).setFloat64(0, performance.now());
    for (const [peerId, watched] of this.peers) {
      if (watched.legacy) continue;
      if (!watched.lp) void this.openStream(peerId, watched);
      else if (!watched.writing) void this.beat(watched, frame);
      if (late || !watched.up) continue;
      const silentMs = now - watched.heardAt;
      if (silentMs > this.options.downAfterMs) {
        watched.up = false;
        this.counters.down += 1;
        this.deps.changed(peerId, false, "silent", silentMs);
      }
    }
  }

  private async beat(watched: Watched, frame: Uint8Array): Promise<void> {
    const lp = watched.lp;
    if (!lp) return;
    watched.writing = true;
    try {
      await lp.write(frame, { signal: watched.controller.signal });
    } catch {
      if (watched.lp === lp) watched.lp = undefined;
    } finally {
      watched.writing = false;
    }
  }
}
