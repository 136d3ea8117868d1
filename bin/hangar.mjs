#!/usr/bin/env node
// The `hangar` command (package.json "bin"). The project runs TypeScript through tsx, so this
// registers tsx's loader in this same process (raw terminal mode and stdin piping stay ours)
// and runs the CLI's source.
import { register } from "tsx/esm/api";

register();
await import("../cli/main.ts");
