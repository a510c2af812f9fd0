import { hkdfSync } from "node:crypto";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { PrivateKey } from "@libp2p/interface";

export const NODE_KEY_FILE = "node-key";
export const CLUSTER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/;

/**
 * The node's Ed25519 key, created once in `dataDir/node-key` (protobuf bytes, mode 0600) so a
 * restarted node keeps its peer id.
 */
export async function loadOrCreateNodeKey(dataDir: string): Promise<PrivateKey> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, NODE_KEY_FILE);
  try {
    const bytes = await readFile(file);
    return privateKeyFromProtobuf(new Uint8Array(bytes));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new Error(`cannot read the node key ${file}: ${(error as Error).message}`);
    }
  }
  const key = await generateKeyPair("Ed25519");
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, privateKeyToProtobuf(key), { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, file);
  return key;
}

/**
 * The private network's pre-shared key in the go-ipfs swarm.key format @libp2p/pnet reads.
 * Derived with HKDF from the cluster key and bound to the cluster name, so two clusters that
 * share a secret still cannot finish a handshake with each other.
 */
export function derivePreSharedKey(clusterKey: Uint8Array, clusterName: string): Uint8Array {
  if (clusterKey.byteLength < 32) throw new Error("clusterKey must be at least 32 bytes");
  const psk = Buffer.from(hkdfSync("sha256", clusterKey, "pwdless-gs/pnet/v1", clusterName, 32));
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${psk.toString("hex")}`);
}
