import { useEffect, useState } from "react";
import { useIntl } from "react-intl";

const UNITS: Array<[Intl.RelativeTimeFormatUnit, number]> = [
  ["year", 365 * 24 * 3600_000],
  ["month", 30 * 24 * 3600_000],
  ["week", 7 * 24 * 3600_000],
  ["day", 24 * 3600_000],
  ["hour", 3600_000],
  ["minute", 60_000],
];

/** "3 days ago", "vor 5 Minuten": the largest unit that fits, in the page's language. */
export function relative(at: number, now: number, locale: string): string {
  const format = new Intl.RelativeTimeFormat(locale, { numeric: "auto" });
  const diff = at - now;
  for (const [unit, ms] of UNITS) {
    if (Math.abs(diff) >= ms) return format.format(Math.round(diff / ms), unit);
  }
  return format.format(0, "minute");
}

/**
 * A moment as the person would say it, in their language and time zone. The server knows neither
 * the zone nor the person's clock, so it sends the date in UTC; the browser then shows it relative
 * ("2 hours ago"), with the exact local time on hover.
 */
export function RelativeTime({ at }: { at: number }) {
  const { locale } = useIntl();
  const [now, setNow] = useState<number | null>(null);
  useEffect(() => {
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), 60_000);
    return () => clearInterval(timer);
  }, []);
  const iso = new Date(at).toISOString();
  if (now === null) {
    const utc = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" });
    return <time dateTime={iso}>{`${utc.format(at)} UTC`}</time>;
  }
  const local = new Intl.DateTimeFormat(locale, { dateStyle: "full", timeStyle: "short" }).format(at);
  return (
    <time dateTime={iso} title={local}>
      {relative(at, now, locale)}
    </time>
  );
}
