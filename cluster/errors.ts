/** The error a write's durability wait rejects with when the node cannot make writes durable. */
export class ClusterUnavailableError extends Error {
  constructor(
    /**
     * "disk": this node's file refused the write (full, read-only); "redis": Redis is unreachable or
     * slow; "copies": no peer confirmed a copy within ACK_TIMEOUT_MS and ACK_STRICT is on
     */
    readonly reason: "disk" | "redis" | "copies",
    message: string,
  ) {
    super(message);
    this.name = "ClusterUnavailableError";
  }
}
