/**
 * Access tokens whose signature this process has already checked, remembered until they expire,
 * so a client calling the API with the same Bearer pays for one signature check, not one per call.
 */
import { AccessTokens, type TokenCheck } from "./access-token.server";

/** at most this many tokens are remembered (the oldest are forgotten first): a few MB at most */
const MAX_REMEMBERED = 10_000;

export class VerifiedAccessTokens extends AccessTokens {
  // token → its claims; only tokens that verified are kept, keyed by their exact bytes, so a hit is
  // the same token seen before. Expiry is checked on every use; revocation is the caller's, as before.
  private readonly verified = new Map<string, Extract<TokenCheck, { ok: true }>>();
  private readonly clock: () => number;

  constructor(...args: ConstructorParameters<typeof AccessTokens>) {
    super(...args);
    this.clock = args[3];
  }

  override async verify(token: string): Promise<TokenCheck> {
    const known = this.verified.get(token);
    if (known && known.claims.exp * 1000 > this.clock()) return known;
    if (known) this.verified.delete(token);
    const check = await super.verify(token);
    if (check.ok) {
      if (this.verified.size >= MAX_REMEMBERED) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(token, check);
    }
    return check;
  }
}
