/** The account page's lifecycle part: a new address, download my data, delete the account (its own file: account.tsx stays small). */
import { Form, Link } from "@remix-run/react";

export function AccountLifecycle({ pendingAddress }: { pendingAddress: string | null }) {
  return (
    <div className="card">
      <h2>Your address and your data</h2>
      <Form method="post" action="/account/email" className="row">
        <label htmlFor="new-email">New address</label>
        <input id="new-email" name="email" type="email" autoComplete="email" required />
        <button type="submit" className="secondary">
          Change address
        </button>
      </Form>
      {pendingAddress && (
        <Form method="post" action="/account/email" className="row">
          <input type="hidden" name="intent" value="code" />
          <label htmlFor="email-code">Code sent to {pendingAddress}</label>
          <input id="email-code" name="code" type="text" inputMode="numeric" autoComplete="one-time-code" required />
          <button type="submit">Confirm the new address</button>
        </Form>
      )}
      <p className="row">
        <a className="button secondary" href="/account/data" download>
          Download my data
        </a>
        <Link className="button danger" to="/account/delete">
          Delete my account…
        </Link>
      </p>
    </div>
  );
}
