// The CLI's pure parts: the console's `~.` escape, where the login is kept (XDG, modes),
// and which server refusals become which exit codes.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { TRPCClientError } from "@trpc/client";
import { afterAll, describe, expect, it } from "vitest";
import { EXIT, asCliError } from "./api.ts";
import { configFile, loadConfig, saveConfig } from "./config.ts";
import { createEscape } from "./terminal.ts";

const work = mkdtempSync(path.join(os.tmpdir(), "hangar-cli-units-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("console escape", () => {
  it("leaves on ~. at the start of a line, sends ~~ as one ~, and passes every other ~ through", () => {
    const escape = createEscape();
    expect(escape(Buffer.from("ls ~/x\r"))).toEqual({ send: Buffer.from("ls ~/x\r"), leave: false });
    expect(escape(Buffer.from("~~home\r"))).toEqual({ send: Buffer.from("~home\r"), leave: false });
    expect(escape(Buffer.from("~x"))).toEqual({ send: Buffer.from("~x"), leave: false });
    expect(escape(Buffer.from("\r~"))).toEqual({ send: Buffer.from("\r"), leave: false });
    // The dot may come in the next read.
    expect(escape(Buffer.from("."))).toEqual({ send: Buffer.alloc(0), leave: true });
  });
});

describe("config", () => {
  it("is kept under XDG_CONFIG_HOME, directory 0700 and file 0600, and the environment wins", async () => {
    const env = { XDG_CONFIG_HOME: work };
    expect(await loadConfig(env)).toBeUndefined();
    const file = await saveConfig({ url: "https://hangar.example", token: "hgr_secret" }, env);
    expect(file).toBe(path.join(work, "hangar", "config.json"));
    expect(configFile(env)).toBe(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(await loadConfig(env)).toEqual({ url: "https://hangar.example", token: "hgr_secret" });
    expect(await loadConfig({ ...env, HANGAR_URL: "http://127.0.0.1:3000", HANGAR_TOKEN: "hgr_ci" })).toEqual({
      url: "http://127.0.0.1:3000",
      token: "hgr_ci",
    });
  });
});

describe("exit codes", () => {
  it.each([
    ["BAD_REQUEST", EXIT.USAGE],
    ["UNAUTHORIZED", EXIT.UNAUTHENTICATED],
    ["FORBIDDEN", EXIT.FORBIDDEN],
    ["NOT_FOUND", EXIT.NOT_FOUND],
    ["CONFLICT", EXIT.CONFLICT],
    ["PRECONDITION_FAILED", EXIT.CONFLICT],
    ["TIMEOUT", EXIT.TIMEOUT],
    ["INTERNAL_SERVER_ERROR", EXIT.FAILED],
  ])("%s is exit %i, with the server's sentence", (code, exit) => {
    const error = new TRPCClientError("No VM named x.", { result: { error: { message: "No VM named x.", code: -1, data: { code } } } });
    expect(asCliError(error)).toMatchObject({ message: "No VM named x.", exitCode: exit });
  });

  it("is 8 when the server cannot be reached", () => {
    expect(asCliError(new TRPCClientError("fetch failed")).exitCode).toBe(EXIT.UNREACHABLE);
  });
});
