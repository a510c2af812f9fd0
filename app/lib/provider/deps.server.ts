/** What the OpenID provider's parts share: settings, the app's services it signs in with, and its own tables. */
import type { Audit } from "#app/lib/abuse/audit.server.ts";
import type { UserStore } from "#app/lib/accounts/users.server.ts";
import type { AppConfig, ClusterPort, KeyRing, Logger, ProviderSettings } from "#app/lib/context.server.ts";
import type { Auth } from "#app/lib/session/auth.server.ts";
import type { SessionStore } from "#app/lib/session/sessions.server.ts";
import type { Consents } from "./consents.server";
import type { ProviderRows } from "./rows.server";
import type { SingleUse } from "./single-use.server";

export interface ProviderDeps {
  config: AppConfig;
  keys: KeyRing;
  settings: ProviderSettings;
  cluster: ClusterPort;
  log: Logger;
  audit: Audit;
  services: { users: UserStore; sessions: SessionStore; auth: Auth };
  rows: ProviderRows;
  singleUse: SingleUse;
  consents: Consents;
}
