// Prisma CLI configuration. `engine: "js"` runs migrations through Prisma's wasm schema
// engine and the same driver adapters the server uses, so nothing native is downloaded
// (Prisma's native schema engine cannot be fetched on an offline host).
import { defineConfig } from "prisma/config";
import { databaseProvider, databaseUrl } from "./server/database-url.ts";
import { createAdapterFactory } from "./server/db-adapter.ts";

const url = databaseUrl();
const provider = databaseProvider(url);

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: `prisma/${provider}`,
  migrations: { path: `prisma/${provider}/migrations` },
  adapter: async () => createAdapterFactory(url),
});
