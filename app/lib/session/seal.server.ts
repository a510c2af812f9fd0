/**
 * iron-session's `sealData`/`unsealData`, same signatures and same seal format (`Fe26.2*…~2`), with
 * each password's AES and HMAC keys derived once instead of by PBKDF2 on every call, and iron's
 * cipher and MAC run by node:crypto.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomFillSync } from "node:crypto";
import { unsealData as unsealWithPbkdf2 } from "iron-session";
import { defaults, seal, unseal, type password as ironPassword } from "iron-webcrypto";

type Passwords = string | Record<string | number, string>;

interface DerivedKeys {
  encryption: Uint8Array;
  integrity: Uint8Array;
}

/** iron-session's token version suffix: its unsealData reads `~2` seals as plain data */
const VERSION_SUFFIX = "~2";
const HKDF_SALT = "pwdless-gs/iron-seal/v1";

/** a key as iron hands it back to us: the raw bytes it imported */
interface RawKey {
  raw: Buffer;
  name: string;
}

const arrayBuffer = (buffer: Buffer): ArrayBuffer =>
  buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) as ArrayBuffer;

function aesKey(algorithm: { name?: string; iv?: Uint8Array }, key: RawKey): { key: Buffer; iv: Uint8Array } {
  if (algorithm.name !== "AES-CBC" || key.name !== "AES-CBC" || key.raw.length !== 32 || !algorithm.iv)
    throw new Error("only AES-256-CBC with a 32-byte key");
  return { key: key.raw, iv: algorithm.iv };
}

// The four WebCrypto calls iron makes with pre-derived keys (import a raw key, AES-256-CBC both
// ways, HMAC-SHA256), done by node:crypto. iron takes its crypto as a parameter for this; Node's
// WebCrypto spends tens of µs checking arguments and hopping threads per call, more than the work.
const nodeCrypto = {
  getRandomValues: (array: Uint8Array) => randomFillSync(array),
  subtle: {
    async importKey(_format: string, keyData: Uint8Array, algorithm: { name: string }): Promise<RawKey> {
      return { raw: Buffer.from(keyData), name: algorithm.name };
    },
    async encrypt(algorithm: { name?: string; iv?: Uint8Array }, key: RawKey, data: Uint8Array) {
      const { key: raw, iv } = aesKey(algorithm, key);
      const cipher = createCipheriv("aes-256-cbc", raw, iv);
      return arrayBuffer(Buffer.concat([cipher.update(data), cipher.final()]));
    },
    async decrypt(algorithm: { name?: string; iv?: Uint8Array }, key: RawKey, data: Uint8Array) {
      const { key: raw, iv } = aesKey(algorithm, key);
      const decipher = createDecipheriv("aes-256-cbc", raw, iv);
      return arrayBuffer(Buffer.concat([decipher.update(data), decipher.final()]));
    },
    async sign(_algorithm: unknown, key: RawKey, data: Uint8Array) {
      if (key.name !== "HMAC") throw new Error("only HMAC-SHA256");
      return arrayBuffer(createHmac("sha256", key.raw).update(data).digest());
    },
    async deriveBits(): Promise<ArrayBuffer> {
      throw new Error("keys are pre-derived: no PBKDF2 here");
    },
  },
};
// iron-webcrypto declares DOM CryptoKey types for what is, to it, an opaque key handle
const ironCrypto = nodeCrypto as unknown as Parameters<typeof seal>[0];

// A password string gives two fixed 256-bit keys. iron with a key buffer skips its per-call PBKDF2
// (two async WebCrypto derivations of ~0.2 ms each) and leaves the seal's salt fields empty.
// Kept for the life of the process: one entry per configured secret and purpose.
const derived = new Map<string, DerivedKeys>();

function keysFor(password: string): DerivedKeys {
  let keys = derived.get(password);
  if (!keys) {
    if (password.length < defaults.encryption.minPasswordlength) throw new Error("seal password too short");
    keys = {
      encryption: new Uint8Array(hkdfSync("sha256", password, HKDF_SALT, "encryption", 32)),
      integrity: new Uint8Array(hkdfSync("sha256", password, HKDF_SALT, "integrity", 32)),
    };
    derived.set(password, keys);
  }
  return keys;
}

const asMap = (password: Passwords): Record<string, string> =>
  typeof password === "string" ? { 1: password } : Object.fromEntries(Object.entries(password));

/** Seal with the highest-numbered password, as iron-session does. */
export async function sealData(
  data: unknown,
  { password, ttl }: { password: Passwords; ttl: number },
): Promise<string> {
  const map = asMap(password);
  const id = String(Math.max(...Object.keys(map).map(Number)));
  const keys = keysFor(map[id]!);
  const sealed = await seal(
    ironCrypto,
    data,
    { id, encryption: keys.encryption, integrity: keys.integrity },
    { ...defaults, ttl: ttl * 1000 },
  );
  return `${sealed}${VERSION_SUFFIX}`;
}

/**
 * Open a seal made by `sealData` above; seals made by iron-session itself (a salt in the third
 * field: cookies issued before keys were pre-derived) still open, through its PBKDF2 path. Like
 * iron-session: `{}` for an expired, tampered or unknown-key seal.
 */
export async function unsealData<T>(
  sealed: string,
  { password, ttl }: { password: Passwords; ttl: number },
): Promise<T> {
  const [body = "", version] = sealed.split("~");
  const legacy = version !== "2" || (body.split("*")[2] ?? "") !== "";
  if (legacy) return unsealWithPbkdf2<T>(sealed, { password, ttl });
  const hash: ironPassword.Hash = {};
  for (const [id, secret] of Object.entries(asMap(password))) hash[id] = keysFor(secret);
  try {
    return ((await unseal(ironCrypto, body, hash, { ...defaults, ttl: ttl * 1000 })) ?? {}) as T;
  } catch (error) {
    if (
      error instanceof Error &&
      /^(Expired seal|Bad hmac value|Cannot find password|Incorrect number of sealed components)/.test(error.message)
    )
      return {} as T;
    throw error;
  }
}
