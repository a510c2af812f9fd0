/**
 * The OpenID provider's signing keys, the same on every node: an RS256 key (every relying party's
 * default) and an Ed25519 key, both derived from SECRET_KEY_BASE's provider subkey, so nothing
 * is stored or shared. Keys of SECRET_KEY_BASE_PREVIOUS are published beside them, never used to sign.
 *
 * RSA from a seed: each prime is the first probable prime at or above a 1024-bit number read from
 * an HKDF stream (top two bits set, so the modulus has 2048 bits), found by a small-prime sieve on
 * this thread (a few ms) and OpenSSL's Miller–Rabin test (`crypto.checkPrime`) on libuv's pool, so
 * the event loop stays free. The same secret gives the same primes, hence the same key, everywhere.
 */
import { checkPrime, createHash, createPrivateKey, hkdfSync, type JsonWebKey } from "node:crypto";

const SALT = "pwdless-gs/v1/oidc-provider";
const E = 65537n;
const PRIME_BITS = 1024;
const SMALL_PRIMES = smallPrimes(1 << 14);
// PKCS #8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410)
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** A private JWK as oidc-provider takes it in `jwks`, with its RFC 7638 thumbprint as `kid`. */
export type ProviderJwk = JsonWebKey & { kid: string; alg: "RS256" | "EdDSA"; use: "sig" };

function smallPrimes(limit: number): number[] {
  const composite = new Uint8Array(limit);
  const primes: number[] = [];
  for (let i = 3; i < limit; i += 2) {
    if (composite[i]) continue;
    primes.push(i);
    for (let j = i * i; j < limit; j += 2 * i) composite[j] = 1;
  }
  return primes;
}

const toBigInt = (bytes: Uint8Array) => BigInt(`0x${Buffer.from(bytes).toString("hex")}`);

function toBase64url(value: bigint): string {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return Buffer.from(hex, "hex").toString("base64url");
}

function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [((a % m) + m) % m, m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) throw new Error("not invertible");
  return ((oldS % m) + m) % m;
}

const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? a : gcd(b, a % b));

/** The first probable prime p ≥ start with p − 1 coprime to e: sieve here, Miller–Rabin off the event loop. */
async function primeFrom(start: bigint): Promise<bigint> {
  const residues = SMALL_PRIMES.map((p) => Number(start % BigInt(p)));
  const eResidue = Number(start % E);
  for (let step = 0; ; step += 2) {
    let survives = (eResidue + step) % Number(E) !== 1;
    for (let i = 0; survives && i < SMALL_PRIMES.length; i += 1) {
      if ((residues[i]! + step) % SMALL_PRIMES[i]! === 0) survives = false;
    }
    if (!survives) continue;
    const candidate = start + BigInt(step);
    const prime = await new Promise<boolean>((resolve, reject) =>
      checkPrime(candidate, (error, result) => (error ? reject(error) : resolve(result))),
    );
    if (prime) return candidate;
  }
}

function primeStart(subkey: Uint8Array, label: string): bigint {
  const bytes = new Uint8Array(hkdfSync("sha256", subkey, SALT, `rsa-2048/${label}`, PRIME_BITS / 8));
  // top two bits set: the product of two such primes has exactly 2048 bits; odd
  bytes[0]! |= 0xc0;
  bytes[bytes.length - 1]! |= 1;
  return toBigInt(bytes);
}

function thumbprint(members: Record<string, string>): string {
  // RFC 7638: the required members in lexicographic order, no whitespace
  const sorted = Object.fromEntries(Object.entries(members).sort(([a], [b]) => a.localeCompare(b)));
  return createHash("sha256").update(JSON.stringify(sorted)).digest("base64url");
}

export async function deriveRsaKey(subkey: Uint8Array): Promise<ProviderJwk> {
  const p = await primeFrom(primeStart(subkey, "p"));
  const q = await primeFrom(primeStart(subkey, "q"));
  if (p === q) throw new Error("RSA derivation gave equal primes");
  const n = p * q;
  const lambda = ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n);
  const d = modInverse(E, lambda);
  const jwk = {
    kty: "RSA",
    n: toBase64url(n),
    e: toBase64url(E),
    d: toBase64url(d),
    p: toBase64url(p),
    q: toBase64url(q),
    dp: toBase64url(d % (p - 1n)),
    dq: toBase64url(d % (q - 1n)),
    qi: toBase64url(modInverse(q, p)),
  };
  return { ...jwk, kid: thumbprint({ e: jwk.e, kty: "RSA", n: jwk.n }), alg: "RS256", use: "sig" };
}

export function deriveEd25519Key(subkey: Uint8Array): ProviderJwk {
  const seed = Buffer.from(hkdfSync("sha256", subkey, SALT, "ed25519", 32));
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: "der", type: "pkcs8" });
  const jwk = key.export({ format: "jwk" });
  return { ...jwk, kid: thumbprint({ crv: "Ed25519", kty: "OKP", x: jwk.x! }), alg: "EdDSA", use: "sig" };
}

/** Every key of the current secret first (oidc-provider signs with the first key of an algorithm), then the previous secrets'. */
export async function deriveProviderKeys(current: Uint8Array, previous: Uint8Array[]): Promise<ProviderJwk[]> {
  const keys: ProviderJwk[] = [];
  for (const subkey of [current, ...previous]) keys.push(await deriveRsaKey(subkey), deriveEd25519Key(subkey));
  return keys;
}

/** Cookie signing keys (keygrip): the current secret's first, so cookies signed before a rotation still open. */
export function deriveCookieKeys(current: Uint8Array, previous: Uint8Array[]): string[] {
  return [current, ...previous].map((subkey) =>
    Buffer.from(hkdfSync("sha256", subkey, SALT, "cookies", 32)).toString("base64url"),
  );
}
