/** POST /locale: the language switcher. Keeps the choice in a cookie for a year and goes back where it was. */
import type { ActionFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { LOCALE_COOKIE, supported } from "#app/lib/i18n/locales.ts";
import { safeRedirect } from "#app/lib/validation.server.ts";

export async function loader() {
  return redirect("/");
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await request.formData().catch(() => new FormData());
  const locale = supported(String(form.get("locale") ?? ""));
  const back = safeRedirect(form.get("back"), context.app.config, "/");
  const headers = new Headers({ "Cache-Control": "no-store" });
  if (locale) {
    const secure = context.app.config.appUrl.protocol === "https:" ? "; Secure" : "";
    headers.append("Set-Cookie", `${LOCALE_COOKIE}=${locale}; Path=/; Max-Age=31536000; SameSite=Lax${secure}`);
  }
  return redirect(back, { headers });
}
