/** Where every bench keeps its figures: bench/results/<kind>-<UTC time>.md beside a .json of the same name. */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ROOT } from "../tests/support/node";

const DIR = path.join(ROOT, "bench", "results");

/** Write a run's report and figures (again, under the same name, when called again for the same run); returns the .md's path. */
export function writeResults(kind: string, at: Date | string, markdown: string, figures: unknown): string {
  const stamp = new Date(at).toISOString().slice(0, 19).replace(/[:T]/g, "-");
  mkdirSync(DIR, { recursive: true });
  const file = path.join(DIR, `${kind}-${stamp}.md`);
  writeFileSync(file, markdown);
  writeFileSync(file.replace(/\.md$/, ".json"), `${JSON.stringify(figures, null, 2)}\n`);
  console.log(`written to ${path.relative(ROOT, file)}`);
  return file;
}
