/** A SessionHeaders that records what the session layer sends back, for unit tests of the session layer. */
import type { SessionHeaders } from "#app/lib/context.server.ts";

export class RecordedHeaders implements SessionHeaders {
  readonly cookies: string[] = [];
  readonly headers = new Map<string, string>();

  cookie(setCookie: string): void {
    this.cookies.push(setCookie);
  }

  header(name: string, value: string): void {
    this.headers.set(name.toLowerCase(), value);
  }

  /** the last Set-Cookie line sent, if any */
  get lastCookie(): string | undefined {
    return this.cookies[this.cookies.length - 1];
  }
}

export const recorded = () => new RecordedHeaders();
