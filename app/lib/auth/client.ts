/**
 * Calling this site's API from the browser: `apiFetch(url, init)` is `fetch` with the access
 * token. The token lives in this module's memory only (never in storage, never in a cookie): it is
 * traded for the session cookie at `POST /auth/refresh` when missing, replaced by the fresh one a
 * response brings in `X-Access-Token`, and traded once more after a 401 before giving up.
 */
let accessToken: string | null = null;

export async function apiFetch(input: string, init: RequestInit = {}): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    if (!accessToken) {
      const refreshed = await fetch("/auth/refresh", { method: "POST", credentials: "same-origin" });
      if (!refreshed.ok) return refreshed;
      accessToken = ((await refreshed.json()) as { access_token: string }).access_token;
    }
    const headers = new Headers(init.headers);
    headers.set("Authorization", `Bearer ${accessToken}`);
    const response = await fetch(input, { ...init, headers, credentials: "same-origin" });
    const fresh = response.headers.get("X-Access-Token");
    if (fresh) accessToken = fresh;
    if (response.status !== 401 || attempt > 0) return response;
    // the token's session ended, or it expired without the cookie: ask the cookie once more
    accessToken = null;
  }
}
