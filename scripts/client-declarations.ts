/**
 * After `tsc -p client/tsconfig.json`: the declarations `hangar/client` ships describe the
 * API's inputs and outputs. Domain modules they name also take the server's services
 * (`Hangar`) as a parameter, and that type names every server library (better-auth, ws…),
 * whose own declarations do not all type-check in another project without skipLibCheck.
 * A client never holds the services, so their declaration becomes an opaque type.
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const file = path.join(root, "dist", "client", "server", "hangar.d.ts");

const emitted = await readFile(file, "utf8");
if (!/export (type|interface) Hangar\b/.test(emitted)) throw new Error(`${file} no longer declares Hangar; update scripts/client-declarations.ts`);
await writeFile(
  file,
  `/** The server's services (server/hangar.ts), opaque to clients. */\nexport interface Hangar {\n    readonly [service: string]: unknown;\n}\n`,
);
