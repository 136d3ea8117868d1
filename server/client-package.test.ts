// `hangar/client` from a separate project, as a new user would use it: a project in a temp
// directory with this repository linked into its node_modules compiles the README's client
// example with tsc under strict and without skipLibCheck, imports it at run time, and a
// wrong call fails to type-check.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc");
let project: string;

/** The README's code block that imports hangar/client. */
function readmeExample(): string {
  const readme = readFileSync(path.join(root, "README.md"), "utf8");
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1] ?? "");
  const example = blocks.find((block) => block.includes('from "hangar/client"'));
  if (!example) throw new Error("the README has no TypeScript example importing hangar/client");
  return example;
}

/** What tsc says of the project: both files in one run (a run takes most of 20 s). */
let compiled: { exitCode: number | undefined; all: string };

/** tsc's lines about `file`. */
const diagnosticsOf = (file: string) =>
  compiled.all
    .split("\n")
    .filter((line) => line.startsWith(`${file}(`))
    .join("\n");

beforeAll(async () => {
  await execa("npm", ["run", "--silent", "build:client"], { cwd: root });
  project = mkdtempSync(path.join(os.tmpdir(), "hangar-client-"));
  mkdirSync(path.join(project, "node_modules", "@types"), { recursive: true });
  // The repository as the dependency (what `npm install ../hangar` links), and the project's own @types/node.
  symlinkSync(root, path.join(project, "node_modules", "hangar"), "dir");
  symlinkSync(path.join(root, "node_modules", "@types", "node"), path.join(project, "node_modules", "@types", "node"), "dir");
  writeFileSync(
    path.join(project, "package.json"),
    JSON.stringify({ name: "uses-hangar", private: true, type: "module", dependencies: { hangar: `file:${root}` } }),
  );
  writeFileSync(
    path.join(project, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        lib: ["ESNext", "DOM"],
        module: "nodenext",
        moduleResolution: "nodenext",
        strict: true,
        noUncheckedIndexedAccess: true,
        noEmit: true,
      },
      include: ["readme.ts", "wrong.ts"],
    }),
  );
  writeFileSync(path.join(project, "readme.ts"), readmeExample());
  writeFileSync(
    path.join(project, "wrong.ts"),
    [
      'import { createHangarClient } from "hangar/client";',
      'const hangar = createHangarClient({ url: "http://127.0.0.1:3000", token: "t" });',
      "await hangar.vm.start.mutate({ id: 42 });",
      "await hangar.vm.launch.mutate({ id: 'x' });",
      "const vm = await hangar.vm.get.query({ id: 'x' });",
      "console.log(vm.nonsense);",
      "export {};",
      "",
    ].join("\n"),
  );
  const result = await execa("node", [tsc, "-p", "."], { cwd: project, reject: false, all: true });
  compiled = { exitCode: result.exitCode, all: result.all };
}, 600_000);

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

it("the README's example type-checks without skipLibCheck", () => {
  expect(diagnosticsOf("readme.ts")).toBe("");
  // Nothing but the wrong calls below is reported: no error from the package's own declarations.
  expect(compiled.all.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("wrong.ts("))).toEqual([]);
});

it("a call with the wrong input, or of a procedure that does not exist, does not type-check", () => {
  expect(compiled.exitCode).not.toBe(0);
  const wrong = diagnosticsOf("wrong.ts");
  expect(wrong).toMatch(/wrong\.ts\(3,.*Type 'number' is not assignable to type 'string'/);
  expect(wrong).toMatch(/wrong\.ts\(4,.*Property 'launch' does not exist/);
  expect(wrong).toMatch(/wrong\.ts\(6,.*Property 'nonsense' does not exist/);
  expect(wrong.split("\n")).toHaveLength(3);
});

it("imports at run time from the package path", async () => {
  const script =
    'import("hangar/client").then((m) => console.log(typeof m.createHangarClient, typeof m.createHangarClient({ url: "http://127.0.0.1:1", token: "t" }).vm.list.query))';
  const result = await execa("node", ["-e", script], { cwd: project });
  expect(result.stdout).toBe("function function");
});
