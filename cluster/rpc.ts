/**
 * Request/response between two members over a stream protocol: one JSON request frame, one JSON
 * response frame. Failures reach the caller as a ClusterRequestError with a code.
 */
import type { Stream } from "@libp2p/interface";
import { lpStream } from "it-length-prefixed-stream";
import type { Logger, RequestHandler } from "./types";
import { decodeJson, encodeJson, MAX_FRAME_BYTES, rpcRequestSchema, rpcResponseSchema, WIRE_VERSION } from "./wire";

export type RequestErrorCode = "unreachable" | "timeout" | "remote-error";

export class ClusterRequestError extends Error {
  constructor(
    readonly code: RequestErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "ClusterRequestError";
  }
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
const METHOD = /^[a-zA-Z0-9._:/-]{1,128}$/;

export class RequestHandlers {
  private readonly handlers = new Map<string, RequestHandler>();

  constructor(private readonly log: Logger) {}

  register(method: string, handler: RequestHandler): void {
    if (!METHOD.test(method)) throw new Error(`invalid request method name: ${method}`);
    this.handlers.set(method, handler);
  }

  /** Run a handler; a missing handler or a thrown error becomes a remote error. */
  async invoke(
    method: string,
    body: unknown,
    from: string,
  ): Promise<{ ok: true; body: unknown } | { ok: false; error: { message: string } }> {
    const handler = this.handlers.get(method);
    if (!handler) return { ok: false, error: { message: `no handler for ${method}` } };
    try {
      return { ok: true, body: await handler(body, from) };
    } catch (error) {
      this.log.warn("cluster: request handler failed", { method, from, error: (error as Error).message });
      return { ok: false, error: { message: (error as Error).message || "handler failed" } };
    }
  }

  /** Serve one inbound request stream. */
  async serve(stream: Stream, from: string, signal: AbortSignal): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
    try {
      const parsed = rpcRequestSchema.safeParse(decodeJson((await lp.read({ signal })).subarray()));
      const response =
        parsed.success && parsed.data.v === WIRE_VERSION
          ? await this.invoke(parsed.data.method, parsed.data.body, from)
          : { ok: false as const, error: { message: "bad request frame" } };
      let bytes: Uint8Array;
      try {
        bytes = encodeJson(response);
      } catch (error) {
        bytes = encodeJson({ ok: false, error: { message: `response not serialisable: ${(error as Error).message}` } });
      }
      await lp.write(bytes, { signal });
      await stream.close({ signal });
    } catch (error) {
      stream.abort(error as Error);
      throw error;
    }
  }
}

/**
 * Send a request on a freshly opened stream. `open` dials; its failure is "unreachable" unless
 * the deadline passed first.
 */
export async function sendRequest(
  open: (signal: AbortSignal) => Promise<Stream>,
  method: string,
  body: unknown,
  timeoutMs: number,
): Promise<unknown> {
  const signal = AbortSignal.timeout(timeoutMs);
  const timedOut = () => new ClusterRequestError("timeout", `request ${method} timed out after ${timeoutMs} ms`);
  let frame: Uint8Array;
  try {
    frame = encodeJson({ v: WIRE_VERSION, method, body });
  } catch (error) {
    throw new TypeError(`request body is not JSON-serialisable: ${(error as Error).message}`);
  }
  if (frame.byteLength > MAX_FRAME_BYTES) throw new RangeError(`request body exceeds ${MAX_FRAME_BYTES} bytes`);
  let stream: Stream;
  try {
    stream = await open(signal);
  } catch (error) {
    if (signal.aborted) throw timedOut();
    throw new ClusterRequestError("unreachable", `cannot reach the peer: ${(error as Error).message}`);
  }
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
  let raw: Uint8Array;
  try {
    await lp.write(frame, { signal });
    await stream.closeWrite({ signal });
    raw = (await lp.read({ signal })).subarray();
  } catch (error) {
    stream.abort(error as Error);
    if (signal.aborted) throw timedOut();
    throw new ClusterRequestError("remote-error", `the peer closed the request: ${(error as Error).message}`);
  }
  // the exchange is complete; closing is courtesy and must not delay the answer
  stream.close().catch((error: unknown) => stream.abort(error as Error));
  let response;
  try {
    response = rpcResponseSchema.parse(decodeJson(raw));
  } catch {
    throw new ClusterRequestError("remote-error", "malformed response");
  }
  if (!response.ok) throw new ClusterRequestError("remote-error", response.error.message);
  return response.body;
}
