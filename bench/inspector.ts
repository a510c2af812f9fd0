/**
 * What a real server process holds, read from outside: the bench starts the server with
 * `--inspect=127.0.0.1:<port>` and asks over the DevTools protocol for a full GC, then for
 * `process.memoryUsage()`: the JS heap, and `external`, the memory V8 counts outside it, where
 * the tables' records live (`arrayBuffers` misses the ones a worker thread handed over at start).
 * The server's code is not changed for it.
 */

interface Answer {
  id?: number;
  result?: { result?: { value?: unknown } };
  error?: { message: string };
}

export interface Held {
  heapUsed: number;
  /** what V8 counts outside its heap: array buffers (the tables' records), including ones a worker handed over */
  external: number;
  arrayBuffers: number;
  rss: number;
}

/** Collect garbage in the process listening for the inspector on `port`, then read its memory. */
export async function heldBy(port: number): Promise<Held> {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as {
    webSocketDebuggerUrl: string;
  }[];
  const url = targets[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`no inspector target on port ${port}`);
  const socket = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener("open", () => resolve(), { once: true });
    socket.addEventListener("error", () => reject(new Error(`cannot reach the inspector at ${url}`)), { once: true });
  });
  let next = 0;
  const pending = new Map<number, (answer: Answer) => void>();
  socket.addEventListener("message", (event) => {
    const answer = JSON.parse(String(event.data)) as Answer;
    if (answer.id !== undefined) pending.get(answer.id)?.(answer);
  });
  const call = (method: string, params: object = {}) =>
    new Promise<Answer>((resolve, reject) => {
      const id = ++next;
      const timer = setTimeout(() => reject(new Error(`inspector: ${method} timed out`)), 120_000);
      pending.set(id, (answer) => {
        clearTimeout(timer);
        if (answer.error) reject(new Error(`inspector: ${answer.error.message}`));
        else resolve(answer);
      });
      socket.send(JSON.stringify({ id, method, params }));
    });
  try {
    await call("HeapProfiler.collectGarbage");
    await call("HeapProfiler.collectGarbage");
    const answer = await call("Runtime.evaluate", {
      expression: "JSON.stringify(process.memoryUsage())",
      returnByValue: true,
    });
    const usage = JSON.parse(String(answer.result?.result?.value)) as Held;
    return { heapUsed: usage.heapUsed, external: usage.external, arrayBuffers: usage.arrayBuffers, rss: usage.rss };
  } finally {
    socket.close();
  }
}
