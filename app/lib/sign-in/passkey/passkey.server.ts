/** Passkeys (WebAuthn) with @simplewebauthn/server: options, sealed single-use challenges any node can check, and verification. */
import { createHmac } from "node:crypto";
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from "@simplewebauthn/server";
import { sealData, unsealData } from "iron-session";
import { z } from "zod";
import type { Table } from "#cluster";
import type { User, UserStore } from "#app/lib/accounts/users.server.ts";
import type { Passkey, PasskeyStore } from "#app/lib/accounts/passkeys.server.ts";
import type { ClusterPort, KeyRing } from "#app/lib/context.server.ts";
import { Refusal } from "#app/lib/sign-in/refusal.server.ts";

export type PasskeyProblem =
  /** not a WebAuthn response, or not one of ours */
  | "malformed"
  /** the challenge is unknown, expired, for another step or user, or used already */
  | "challenge"
  /** no such passkey here: never registered, or removed */
  | "unknown-credential"
  /** the passkey belongs to someone else */
  | "not-yours"
  /** the signature, origin, RP id or counter did not check out */
  | "verification";

const STATUS: Record<PasskeyProblem, number> = {
  malformed: 400,
  challenge: 400,
  "unknown-credential": 400,
  "not-yours": 403,
  verification: 400,
};

export class PasskeyError extends Refusal<PasskeyProblem> {
  readonly kind = "passkey-error";
  constructor(
    problem: PasskeyProblem,
    readonly detail: string,
  ) {
    super(problem, STATUS[problem], `passkey refused: ${problem} (${detail})`);
  }
}

export function isPasskeyError(error: unknown): error is PasskeyError {
  return typeof error === "object" && error !== null && (error as { kind?: unknown }).kind === "passkey-error";
}

const CHALLENGE_TTL_MS = 5 * 60 * 1000;
const b64url = z
  .string()
  .min(1)
  .max(8192)
  .regex(/^[A-Za-z0-9_-]+$/);

/** The sealed state a browser echoes back with its answer: which step, which challenge, whose, until when. */
const stateSchema = z.object({
  step: z.enum(["register", "sign-in", "reconfirm"]),
  challenge: b64url,
  uid: z.string().uuid().optional(),
  until: z.number().int(),
});
type State = z.infer<typeof stateSchema>;

const usedChallengeSchema = z.object({ usedAt: z.number().int() });

const registrationSchema = z.object({
  id: b64url,
  rawId: b64url,
  type: z.literal("public-key"),
  response: z.object({
    clientDataJSON: b64url,
    attestationObject: b64url,
    transports: z.array(z.string().max(32)).max(8).optional(),
  }),
  clientExtensionResults: z.object({}).passthrough().default({}),
  authenticatorAttachment: z.enum(["platform", "cross-platform"]).optional(),
});

const authenticationSchema = z.object({
  id: b64url,
  rawId: b64url,
  type: z.literal("public-key"),
  response: z.object({
    clientDataJSON: b64url,
    authenticatorData: b64url,
    signature: b64url,
    userHandle: b64url.optional(),
  }),
  clientExtensionResults: z.object({}).passthrough().default({}),
  authenticatorAttachment: z.enum(["platform", "cross-platform"]).optional(),
});

/**
 * A signed-in person proved again, just now, with one of their own passkeys and user verification
 * (e.g. to delete the account). Only `Passkeys.reconfirm` makes one: the brand keeps a plain object
 * from passing for it.
 */
export interface Reconfirmed {
  readonly [reconfirmedBrand]: true;
  readonly uid: string;
  /** the credential used */
  readonly credential: string;
  readonly at: number;
}
declare const reconfirmedBrand: unique symbol;

export interface PasskeyDeps {
  cluster: ClusterPort;
  users: UserStore;
  passkeys: PasskeyStore;
  keys: KeyRing;
}

export interface PasskeyOptions {
  /** the relying party: its id is APP_URL's host name, its origin APP_URL's origin */
  appUrl: URL;
  rpName: string;
  now: () => number;
}

export class Passkeys {
  private readonly used: Table<z.infer<typeof usedChallengeSchema>>;
  private readonly openWith: Record<number, string>;
  private readonly sealWith: Record<number, string>;
  private readonly rpID: string;
  private readonly origin: string;

  constructor(
    private readonly deps: PasskeyDeps,
    private readonly options: PasskeyOptions,
  ) {
    this.used = deps.cluster.store.table("passkeyChallenges", { schema: usedChallengeSchema });
    // one purpose, one key: derived from the link key the way the code's MAC key is
    const sub = (k: KeyRing["current"]) => createHmac("sha256", k.link).update("passkey-challenge").digest("hex");
    this.openWith = {};
    for (const k of [...deps.keys.previous].reverse()) this.openWith[k.sealId] = sub(k);
    this.openWith[deps.keys.current.sealId] = sub(deps.keys.current);
    this.sealWith = { [deps.keys.current.sealId]: sub(deps.keys.current) };
    this.rpID = options.appUrl.hostname;
    this.origin = options.appUrl.origin;
  }

  async registrationOptions(user: User): Promise<{ options: PublicKeyCredentialCreationOptionsJSON; state: string }> {
    const mine = this.deps.passkeys.listOf(this.deps.users.idsOf(user));
    const options = await generateRegistrationOptions({
      rpName: this.options.rpName,
      rpID: this.rpID,
      userName: user.email,
      userID: new TextEncoder().encode(user.id),
      attestationType: "none",
      excludeCredentials: mine.map(({ id, passkey }) => ({ id, transports: passkey.transports })),
      // discoverable, so /login can offer it with no address typed; verification preferred, not forced
      authenticatorSelection: { residentKey: "required", userVerification: "preferred" },
    });
    return { options, state: await this.seal({ step: "register", challenge: options.challenge, uid: user.id }) };
  }

  /** Check a new passkey's answer and keep it for the user. */
  async register(
    user: User,
    body: { state?: unknown; response?: unknown; name?: unknown },
  ): Promise<{ id: string; passkey: Passkey }> {
    const response = registrationSchema.safeParse(body.response);
    if (!response.success) throw new PasskeyError("malformed", "registration response");
    const name = z.string().trim().min(1).max(64).safeParse(body.name);
    const state = await this.useChallenge(body.state, "register");
    if (state.uid !== user.id) throw new PasskeyError("challenge", "challenge of another user");
    let verified;
    try {
      verified = await verifyRegistrationResponse({
        // the schema holds every field the library reads; its JSON type is wider
        response: response.data as RegistrationResponseJSON,
        expectedChallenge: state.challenge,
        expectedOrigin: this.origin,
        expectedRPID: this.rpID,
        requireUserVerification: false,
      });
    } catch (error) {
      throw new PasskeyError("verification", error instanceof Error ? error.message.slice(0, 120) : "registration");
    }
    if (!verified.verified) throw new PasskeyError("verification", "registration not verified");
    const { credential } = verified.registrationInfo;
    const existing = this.deps.passkeys.get(credential.id);
    if (existing)
      throw new PasskeyError(existing.uid === user.id ? "challenge" : "not-yours", "credential registered already");
    const passkey = this.deps.passkeys.add(credential.id, {
      uid: user.id,
      name: name.success ? name.data : "Passkey",
      publicKey: Buffer.from(credential.publicKey).toString("base64url"),
      counter: credential.counter,
      transports: (credential.transports ?? []).slice(0, 8),
    });
    return { id: credential.id, passkey };
  }

  async signInOptions(): Promise<{ options: PublicKeyCredentialRequestOptionsJSON; state: string }> {
    // no allowCredentials: the authenticator offers its discoverable passkeys for this site
    const options = await generateAuthenticationOptions({ rpID: this.rpID, userVerification: "preferred" });
    return { options, state: await this.seal({ step: "sign-in", challenge: options.challenge }) };
  }

  /** Check a sign-in answer: the user it proves, with the passkey's counter and last use noted. */
  async signIn(body: { state?: unknown; response?: unknown }): Promise<{ user: User; id: string }> {
    const { id, passkey } = await this.assertion(body, "sign-in", undefined);
    const user = this.deps.users.getUser(passkey.uid);
    if (!user) throw new PasskeyError("unknown-credential", "the passkey's user is unknown here");
    return { user, id };
  }

  /**
   * Options to prove it is still the signed-in person (before deleting the account): only their
   * own passkeys, user verification required, a fresh challenge sealed for this user. Undefined
   * when they have no passkey.
   */
  async reconfirmOptions(
    user: User,
  ): Promise<{ options: PublicKeyCredentialRequestOptionsJSON; state: string } | undefined> {
    const mine = this.deps.passkeys.listOf(this.deps.users.idsOf(user));
    if (mine.length === 0) return undefined;
    const options = await generateAuthenticationOptions({
      rpID: this.rpID,
      userVerification: "required",
      allowCredentials: mine.map(({ id, passkey }) => ({ id, transports: passkey.transports })),
    });
    return { options, state: await this.seal({ step: "reconfirm", challenge: options.challenge, uid: user.id }) };
  }

  /**
   * Check a re-confirmation answer: a challenge sealed for this user and used once, a passkey of
   * theirs, user verification done (PIN or biometrics, not mere presence), the signature good.
   */
  async reconfirm(user: User, body: { state?: unknown; response?: unknown }): Promise<Reconfirmed> {
    const { id } = await this.assertion(body, "reconfirm", user);
    return { uid: user.id, credential: id, at: this.options.now() } as Reconfirmed;
  }

  /**
   * A WebAuthn assertion for `step`: the passkey exists (and, with `owner`, is one of theirs), the
   * sealed challenge is this step's (and owner's) and unused, and the signature checks out; user
   * verification is required when re-confirming. Notes the passkey's counter and last use.
   */
  private async assertion(
    body: { state?: unknown; response?: unknown },
    step: "sign-in" | "reconfirm",
    owner: User | undefined,
  ): Promise<{ id: string; passkey: Passkey }> {
    const response = authenticationSchema.safeParse(body.response);
    if (!response.success) throw new PasskeyError("malformed", "authentication response");
    // refusals that need no challenge come first, so they write nothing
    const id = response.data.id;
    const passkey = this.deps.passkeys.get(id);
    if (!passkey) throw new PasskeyError("unknown-credential", "no such passkey (never added, or removed)");
    if (owner && !this.deps.users.idsOf(owner).has(passkey.uid)) {
      throw new PasskeyError("not-yours", "the passkey belongs to another account");
    }
    const handle = response.data.response.userHandle;
    if (handle !== undefined && Buffer.from(handle, "base64url").toString() !== passkey.uid) {
      throw new PasskeyError("not-yours", "user handle does not match the passkey's user");
    }
    const state = await this.useChallenge(body.state, step);
    if (owner && state.uid !== owner.id) throw new PasskeyError("challenge", "challenge of another user");
    let verified;
    try {
      verified = await verifyAuthenticationResponse({
        response: response.data as AuthenticationResponseJSON,
        expectedChallenge: state.challenge,
        expectedOrigin: this.origin,
        expectedRPID: this.rpID,
        credential: {
          id,
          publicKey: new Uint8Array(Buffer.from(passkey.publicKey, "base64url")),
          counter: passkey.counter,
          transports: passkey.transports,
        },
        requireUserVerification: step === "reconfirm",
      });
    } catch (error) {
      throw new PasskeyError("verification", error instanceof Error ? error.message.slice(0, 120) : "authentication");
    }
    if (!verified.verified) throw new PasskeyError("verification", "authentication not verified");
    this.deps.passkeys.used(id, passkey, verified.authenticationInfo.newCounter);
    return { id, passkey };
  }

  /** Drop records of challenges that have expired anyway. */
  prune(): void {
    const horizon = this.options.now() - CHALLENGE_TTL_MS;
    for (const [key, row] of [...this.used.scan()]) if (row.usedAt < horizon) this.used.delete(key);
  }

  private async seal(state: Omit<State, "until">): Promise<string> {
    return sealData({ ...state, until: this.options.now() + CHALLENGE_TTL_MS }, { password: this.sealWith, ttl: 0 });
  }

  /** Open a state, check its step and age, and mark its challenge used (before verifying: one try per challenge). */
  private async useChallenge(sealed: unknown, step: State["step"]): Promise<State> {
    if (typeof sealed !== "string" || sealed.length > 4096) throw new PasskeyError("challenge", "no state");
    let state: State;
    try {
      const parsed = stateSchema.safeParse(await unsealData<unknown>(sealed, { password: this.openWith, ttl: 0 }));
      if (!parsed.success) throw new Error("bad state");
      state = parsed.data;
    } catch {
      throw new PasskeyError("challenge", "state not sealed by us");
    }
    if (state.step !== step) throw new PasskeyError("challenge", `a ${state.step} challenge used to ${step}`);
    if (state.until < this.options.now()) throw new PasskeyError("challenge", "expired");
    if (this.used.has(state.challenge)) throw new PasskeyError("challenge", "used already");
    this.used.set(state.challenge, { usedAt: this.options.now() });
    return state;
  }
}
