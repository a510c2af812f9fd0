/** The one shape of an expected refusal (a problem code and its HTTP status), of which every sign-in method's problems are cases. */

/**
 * An expected failure: the route turns it into a page or `{"error","message"}` JSON with
 * `status`, and records one audit event. Anything that is not a Refusal is a bug: logged, 500.
 */
export abstract class Refusal<Problem extends string = string> extends Error {
  readonly refusal = true;
  abstract readonly kind: string;

  constructor(
    readonly problem: Problem,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function isRefusal(error: unknown): error is Refusal {
  return typeof error === "object" && error !== null && (error as { refusal?: unknown }).refusal === true;
}
