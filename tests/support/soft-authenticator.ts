/**
 * A software WebAuthn authenticator and client for tests over HTTP, written from the spec
 * independently of the server's library: ES256 (P-256) keys, "none" attestation, and assertions
 * signed over authenticatorData ‖ SHA-256(clientDataJSON), with user presence always and user
 * verification when asked to (a real authenticator's PIN or biometrics).
 * Spec: https://www.w3.org/TR/webauthn-3/#sctn-authenticator-data
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import type { CookieJar } from "./cookie-jar";
import { browse } from "./flows";
import type { NodeProcess } from "./node";

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url");
const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest();

// --- the CBOR this needs (RFC 8949): unsigned and negative integers, byte and text strings, maps ---

type Cbor = number | string | Uint8Array | Map<Cbor, Cbor>;

function head(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 256) return Buffer.from([(major << 5) | 24, n]);
  if (n < 65536) return Buffer.from([(major << 5) | 25, n >> 8, n & 255]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

function cbor(value: Cbor): Buffer {
  if (typeof value === "number") return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === "string") {
    const bytes = Buffer.from(value, "utf8");
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), value]);
  return Buffer.concat([head(5, value.size), ...[...value].flatMap(([k, v]) => [cbor(k), cbor(v)])]);
}

interface Credential {
  id: Buffer;
  privateKey: KeyObject;
  userHandle: string;
  counter: number;
}

export interface RequestOptions {
  challenge: string;
  rpId?: string;
  allowCredentials?: { id: string }[];
  userVerification?: string;
}

export class SoftAuthenticator {
  readonly credentials: Credential[] = [];

  constructor(
    /** the page's origin the client data names (APP_URL's) */
    readonly origin: string,
    readonly rpId = new URL(origin).hostname,
  ) {}

  private authData(flags: number, counter: number, attested?: Buffer): Buffer {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(counter);
    return Buffer.concat([sha256(this.rpId), Buffer.from([flags]), count, ...(attested ? [attested] : [])]);
  }

  private clientData(type: "webauthn.create" | "webauthn.get", challenge: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin: this.origin, crossOrigin: false }));
  }

  /** navigator.credentials.create: a new discoverable ES256 credential, "none" attestation. */
  create(options: { challenge: string; user: { id: string } }): Record<string, unknown> {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwk = publicKey.export({ format: "jwk" });
    const id = randomBytes(16);
    const coseKey = cbor(
      new Map<Cbor, Cbor>([
        [1, 2], // kty: EC2
        [3, -7], // alg: ES256
        [-1, 1], // crv: P-256
        [-2, Buffer.from(jwk.x!, "base64url")],
        [-3, Buffer.from(jwk.y!, "base64url")],
      ]),
    );
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(id.length);
    const attested = Buffer.concat([Buffer.alloc(16), idLength, id, coseKey]);
    // flags: user present (0x01), user verified (0x04), attested credential data (0x40)
    const authData = this.authData(0x45, 0, attested);
    const attestationObject = cbor(
      new Map<Cbor, Cbor>([
        ["fmt", "none"],
        ["attStmt", new Map()],
        ["authData", authData],
      ]),
    );
    this.credentials.push({ id, privateKey, userHandle: options.user.id, counter: 0 });
    return {
      id: b64url(id),
      rawId: b64url(id),
      type: "public-key",
      response: {
        clientDataJSON: b64url(this.clientData("webauthn.create", options.challenge)),
        attestationObject: b64url(attestationObject),
        transports: ["internal"],
      },
      clientExtensionResults: {},
      authenticatorAttachment: "platform",
    };
  }

  /**
   * navigator.credentials.get: an assertion by the first allowed credential this holds (or the
   * one named); `verified: false` answers with user presence only, as without a PIN.
   */
  get(options: RequestOptions, { verified = true, credential }: { verified?: boolean; credential?: string } = {}) {
    const allowed = (options.allowCredentials ?? []).map((c) => c.id);
    const cred = this.credentials.find((c) =>
      credential ? b64url(c.id) === credential : allowed.length === 0 || allowed.includes(b64url(c.id)),
    );
    if (!cred) throw new Error("this authenticator holds none of the allowed credentials");
    cred.counter += 1;
    const authData = this.authData(verified ? 0x05 : 0x01, cred.counter);
    const clientDataJSON = this.clientData("webauthn.get", options.challenge);
    const signature = sign("sha256", Buffer.concat([authData, sha256(clientDataJSON)]), cred.privateKey);
    return {
      id: b64url(cred.id),
      rawId: b64url(cred.id),
      type: "public-key",
      response: {
        clientDataJSON: b64url(clientDataJSON),
        authenticatorData: b64url(authData),
        signature: b64url(signature),
        userHandle: cred.userHandle,
      },
      clientExtensionResults: {},
      authenticatorAttachment: "platform",
    };
  }
}

/** A JSON POST, as the pages' scripts send the passkey steps. */
export const postJson = (body: unknown) => ({
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify(body),
});

/** Add a passkey of this authenticator to the signed-in account of `jar`, through /account/passkeys; the node's answer. */
export async function addPasskey(node: NodeProcess, jar: CookieJar, key: SoftAuthenticator, name = "Laptop") {
  const res = await browse(node, jar, "/account/passkeys", postJson({ step: "options" }));
  const { options, state } = (await res.json()) as {
    options: { challenge: string; user: { id: string } };
    state: string;
  };
  return browse(node, jar, "/account/passkeys", postJson({ step: "add", state, response: key.create(options), name }));
}

/** A passkey sign-in on /auth/passkey answered by this authenticator; the node's answer. */
export async function passkeySignIn(node: NodeProcess, key: SoftAuthenticator, jar: CookieJar): Promise<Response> {
  const res = await node.fetch("/auth/passkey", postJson({ step: "options" }));
  const { options, state } = (await res.json()) as { options: RequestOptions; state: string };
  return browse(
    node,
    jar,
    "/auth/passkey",
    postJson({ step: "verify", state, response: key.get(options), redirectTo: "/account" }),
  );
}
