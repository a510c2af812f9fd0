/**
 * Any address no other route serves: a 404 page. Thrown from a route's loader (rather than left
 * unmatched) so the root loader runs too, and the page has its title, language and brand.
 */
export async function loader() {
  throw new Response("Not found", { status: 404 });
}

export default function NotFound() {
  return null;
}
