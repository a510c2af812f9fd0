import { randomBytes } from "node:crypto";

// 48 random bytes, printed base64url: paste it into SECRET_KEY_BASE (or CLUSTER_SECRET)
console.log(randomBytes(48).toString("base64url"));
