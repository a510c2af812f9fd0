import { z } from "zod";
import { normaliseEmail } from "#app/lib/validation.server.ts";

/** One row of GitHub's `GET /user/emails`. */
const githubEmailSchema = z.object({
  email: z.string(),
  primary: z.boolean(),
  verified: z.boolean(),
  visibility: z.string().nullable().optional(),
});

const githubEmailsSchema = z.array(githubEmailSchema).max(1000);

/** GitHub's `GET /user`: only the stable numeric id matters (logins can be renamed). */
export const githubUserSchema = z.object({ id: z.number().int().positive(), login: z.string().optional() });

export type GitHubEmailChoice =
  | { ok: true; email: string }
  /** no-email: GitHub shared no address; unverified-email: the primary address is not verified; malformed: not GitHub's shape */
  | { ok: false; problem: "no-email" | "unverified-email" | "malformed" };

/**
 * The address a GitHub account proves: its primary address, and only when GitHub has verified it.
 * A verified secondary address does not stand in for an unverified primary one: the person chose
 * the primary as theirs, and GitHub has not checked it.
 */
export function primaryVerifiedEmail(body: unknown): GitHubEmailChoice {
  const parsed = githubEmailsSchema.safeParse(body);
  if (!parsed.success) return { ok: false, problem: "malformed" };
  if (parsed.data.length === 0) return { ok: false, problem: "no-email" };
  const primary = parsed.data.find((row) => row.primary);
  if (!primary) return { ok: false, problem: "no-email" };
  if (!primary.verified) return { ok: false, problem: "unverified-email" };
  const email = normaliseEmail(primary.email);
  if (!email.ok) return { ok: false, problem: "malformed" };
  return { ok: true, email: email.email };
}
