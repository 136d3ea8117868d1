/**
 * Once per test run: the tiny guest (built if missing; the build is cached and stamped)
 * and a migrated template database that each test copies.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import type { TestProject } from "vitest/node";
import { createTemplate, dropTemplate, testDbKind } from "./databases.ts";
import { REPO_ROOT } from "./paths.ts";

export default async function setup(project: TestProject) {
  const guestDir = process.env.HANGAR_GUEST_DIR ?? path.join(REPO_ROOT, "data", "images", "hangar-tiny");
  await execa("bash", [path.join(REPO_ROOT, "scripts", "build-guest.sh"), guestDir], { stdio: "inherit" });
  const work = mkdtempSync(path.join(os.tmpdir(), "hangar-test-template-"));
  const template = await createTemplate(work);
  console.log(`test database: ${testDbKind()}`);
  project.provide("guestDir", guestDir);
  project.provide("templateDb", template);
  return async () => {
    await dropTemplate(template);
    rmSync(work, { recursive: true, force: true });
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    guestDir: string;
    templateDb: string;
  }
}
