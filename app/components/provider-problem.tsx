import { Form, Link } from "@remix-run/react";
import type { OAuthProblem } from "#app/lib/sign-in/social/oauth-errors.server.ts";

export interface ProviderProblemData {
  problem: OAuthProblem;
  provider: { id: string; label: string };
  redirectTo: string;
}

const TEXT: Record<OAuthProblem, (label: string) => { title: string; body: string }> = {
  denied: (label) => ({
    title: "Sign-in was cancelled",
    body: `You did not allow ${label} to sign you in here. Nothing was changed. Try again, or choose another way to sign in.`,
  }),
  "provider-error": (label) => ({
    title: `${label} could not complete the sign-in`,
    body: `${label} reported a problem while signing you in. Try again in a moment, or sign in with an email link.`,
  }),
  state: (label) => ({
    title: "This sign-in could not be checked",
    body: `The answer from ${label} does not belong to a sign-in started in this browser in the last few minutes, so it was refused. Start again from here.`,
  }),
  code: (label) => ({
    title: "This sign-in answer was already used or has expired",
    body: `The one-time code from ${label} works once and for a short time only. Start again to get a new one.`,
  }),
  unreachable: (label) => ({
    title: `${label} cannot be reached`,
    body: `We could not connect to ${label}. Try again in a moment, or sign in with an email link.`,
  }),
  timeout: (label) => ({
    title: `${label} is not answering`,
    body: `${label} took too long to answer. Try again in a moment, or sign in with an email link.`,
  }),
  malformed: (label) => ({
    title: `${label} sent an answer we cannot use`,
    body: `The answer from ${label} was incomplete or not in the expected form, so we did not sign you in. Try again, or sign in with an email link.`,
  }),
  "id-token": (label) => ({
    title: `We could not verify the answer from ${label}`,
    body: `The identity token from ${label} failed our checks (signature, audience, expiry or the one-time value of this sign-in), so we did not sign you in. Try again.`,
  }),
  "no-email": (label) => ({
    title: `${label} did not share an email address`,
    body: `Your account is identified by an email address that ${label} has verified. Add one to your ${label} account, or sign in with an email link.`,
  }),
  "unverified-email": (label) => ({
    title: `Your email address at ${label} is not verified`,
    body: `We only accept an address that ${label} has verified (at GitHub: your primary address). Verify it at ${label} and try again, or sign in with an email link.`,
  }),
};

/** Why a provider sign-in was refused, with a button that starts a new one. */
export function ProviderProblem({ problem, provider, redirectTo }: ProviderProblemData) {
  const text = TEXT[problem](provider.label);
  return (
    <main>
      <div className="card" data-problem={problem}>
        <h1>{text.title}</h1>
        <p>{text.body}</p>
        <Form method="post" action={`/auth/${provider.id}`} reloadDocument className="row">
          <input type="hidden" name="redirectTo" value={redirectTo} />
          <button type="submit">Try again</button>
          <Link to={`/login?redirectTo=${encodeURIComponent(redirectTo)}`}>Other ways to sign in</Link>
        </Form>
      </div>
    </main>
  );
}
