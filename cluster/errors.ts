/** The error a write's durability wait rejects with when the node cannot make writes durable. */
export class ClusterUnavailableError extends Error {
  constructor(
    /** "disk": this node's file refused the write (full, read-only); "redis": Redis is unreachable or slow */
    readonly reason: "disk" | "redis",
    message: string,
  ) {
    super(message);
    this.name = "ClusterUnavailableError";
  }
}
