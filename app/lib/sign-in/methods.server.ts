/** The list of sign-in methods: the one place they are named, read by /login, /account and the audit. */
import type { Provider } from "#app/lib/sign-in/social/providers.server.ts";

/** How /login offers a method. */
export type LoginPresentation =
  /** the address field and "Email me a sign-in link" */
  | "email-form"
  /** no control of its own on /login: offered on "check your email" once a mail is sent */
  | "after-email"
  /** "Sign in with a passkey" and passkey autofill in the address field */
  | "passkey"
  /** one "Sign in with …" button that POSTs to /auth/:id */
  | "provider-button";

export interface SignInMethod {
  /** in session rows, audit events and identities */
  id: string;
  /** the button's or link's words on /login */
  label: string;
  login: LoginPresentation;
  /** how /account names it under "Sign-in methods" (English; pages translate the built-in ones by id) */
  account: string;
  /** a provider's own name ("GitHub"), for pages that word the button in their language */
  provider?: string;
}

export class SignInMethods {
  readonly list: readonly SignInMethod[];

  constructor(providers: readonly Provider[]) {
    this.list = [
      { id: "email", label: "Email me a sign-in link", login: "email-form", account: "Email link or code" },
      { id: "code", label: "Type the code from the email", login: "after-email", account: "Email link or code" },
      { id: "passkey", label: "Sign in with a passkey", login: "passkey", account: "Passkey" },
      ...providers.map((p) => ({
        id: p.id,
        label: `Sign in with ${p.label}`,
        login: "provider-button" as const,
        account: p.label,
        provider: p.label,
      })),
    ];
  }

  /** A method by id; throws on an id not in the list, since only our code passes ids. */
  get(id: string): SignInMethod {
    const method = this.list.find((m) => m.id === id);
    if (!method) throw new Error(`no sign-in method "${id}"`);
    return method;
  }

  /** How /account names a method seen in stored rows (a provider since unconfigured keeps its id). */
  accountName(id: string): string {
    return this.list.find((m) => m.id === id)?.account ?? id;
  }

  shownAs(login: LoginPresentation): SignInMethod[] {
    return this.list.filter((m) => m.login === login);
  }
}
