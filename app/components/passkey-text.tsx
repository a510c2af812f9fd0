import { RelativeTime } from "#app/components/relative-time.tsx";
import { useRich, useT } from "#app/lib/i18n/intl.ts";

/** A passkey's name, when it was added and last used: the same line on /account and an admin's user page. */
export function PasskeyText({
  name,
  createdAt,
  lastUsedAt,
}: {
  name: string;
  createdAt: number;
  lastUsedAt?: number | null;
}) {
  const t = useT();
  const rich = useRich();
  return (
    <div className="item-text">
      <strong>{name}</strong>
      <span className="muted">
        {rich("account.passkeys.added", { when: <RelativeTime at={createdAt} /> })}
        {" · "}
        {lastUsedAt
          ? rich("account.passkeys.lastUsed", { when: <RelativeTime at={lastUsedAt} /> })
          : t("account.passkeys.neverUsed")}
      </span>
    </div>
  );
}
