/** GET /brand.css: the accent colour (APP_ACCENT_COLOR) as a stylesheet from this site, allowed by `style-src 'self'`. */
import type { LoaderFunctionArgs } from "@remix-run/node";
import { brandStylesheet } from "#app/lib/brand.ts";

export async function loader({ context }: LoaderFunctionArgs) {
  const sheet = brandStylesheet(context.app.config.brand);
  return new Response(sheet?.css ?? "", {
    headers: {
      "Content-Type": "text/css; charset=utf-8",
      // the page links it by a hash of its content: a new colour is a new URL
      "Cache-Control": "public, max-age=31536000, immutable",
    },
  });
}
