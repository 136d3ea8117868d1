/**
 * The `hangar` command as one JavaScript file (dist/cli/hangar.mjs), so a command starts in
 * Node alone: through tsx it compiled the CLI's TypeScript at every run (about 2 s of CPU
 * before anything happened, paid again by every `hangar proxy` ssh starts). Beside it,
 * sources.json lists the project's files it was built from: bin/hangar.mjs runs the bundle
 * only while none of them is newer, and the sources through tsx otherwise.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const outdir = path.join(root, "dist", "cli");

const result = await build({
  absWorkingDir: root,
  entryPoints: ["cli/main.ts"],
  outfile: path.join(outdir, "hangar.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  metafile: true,
  logLevel: "warning",
  // Bundled CommonJS packages (commander, ws) call require for Node's own modules.
  banner: { js: 'import { createRequire as createRequireForBundle } from "node:module"; const require = createRequireForBundle(import.meta.url);' },
});
const sources = Object.keys(result.metafile.inputs)
  .filter((input) => !input.includes("node_modules/"))
  .sort();
await writeFile(path.join(outdir, "sources.json"), `${JSON.stringify(sources, null, 2)}\n`);
