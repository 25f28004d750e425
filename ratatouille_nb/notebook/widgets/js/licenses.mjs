// Writes ../static/THIRD_PARTY_LICENSES.txt: the license of every runtime package bundled into
// ../static/lineage.js (the non-dev packages of package-lock.json).
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const lock = JSON.parse(readFileSync("package-lock.json", "utf8"));
const parts = ["Third-party software bundled into lineage.js (built from widgets/js with `npm run build`).\n"];
for (const [path, info] of Object.entries(lock.packages).sort()) {
  if (!path || info.dev) continue;
  const dir = path;
  const file = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  if (!file || !existsSync(join(dir, file))) throw new Error(`no license file in ${dir}`);
  const name = path.replace(/^.*node_modules\//, "");
  parts.push(`${"=".repeat(78)}\n${name} ${info.version} (${info.license})\n${"=".repeat(78)}\n${readFileSync(join(dir, file), "utf8").trim()}\n`);
}
writeFileSync("../static/THIRD_PARTY_LICENSES.txt", parts.join("\n"));
console.log(`wrote ../static/THIRD_PARTY_LICENSES.txt (${parts.length - 1} packages)`);
