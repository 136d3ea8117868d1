#!/usr/bin/env node
// The `hangar` command (package.json "bin"). Setup bundles the CLI into dist/cli/hangar.mjs
// (scripts/build-cli.ts); that file runs while it is newer than every source it was built
// from. Otherwise (not built yet, or a source edited since) tsx's loader is registered in
// this same process (raw terminal mode and stdin piping stay ours) and runs the source.
import { readFileSync, statSync } from "node:fs";

const bundle = new URL("../dist/cli/hangar.mjs", import.meta.url);

function bundleIsCurrent() {
  try {
    const built = statSync(bundle).mtimeMs;
    const sources = JSON.parse(readFileSync(new URL("../dist/cli/sources.json", import.meta.url), "utf8"));
    return Array.isArray(sources) && sources.every((source) => statSync(new URL(`../${source}`, import.meta.url)).mtimeMs <= built);
  } catch {
    return false;
  }
}

if (bundleIsCurrent()) {
  await import(bundle.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../cli/main.ts");
}
