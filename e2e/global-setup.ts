/**
 * Signs in as the admin the server created from HANGAR_ADMIN_EMAIL / _PASSWORD and keeps
 * the session for the browser (storageState) and for the tests' tRPC client.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { request } from "@playwright/test";
import { ADMIN, STORAGE_STATE, baseURL } from "./hangar.ts";

export default async function globalSetup(): Promise<void> {
  const context = await request.newContext({ baseURL, extraHTTPHeaders: { origin: baseURL } });
  const response = await context.post("/api/auth/sign-in/email", { data: { email: ADMIN.email, password: ADMIN.password } });
  if (!response.ok()) throw new Error(`signing in as ${ADMIN.email} failed: ${response.status()} ${await response.text()}`);
  mkdirSync(path.dirname(STORAGE_STATE), { recursive: true });
  await context.storageState({ path: STORAGE_STATE });
  await context.dispose();
}
