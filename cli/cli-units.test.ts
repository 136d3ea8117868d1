// The CLI's pure parts: the console's `~.` escape, where the login is kept (XDG, modes),
// which server refusals become which exit codes, and how events read.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { TRPCClientError } from "@trpc/client";
import { afterAll, describe, expect, it } from "vitest";
import { CliError, EXIT, asCliError, hangarOrigin, readLocalFile, unreachable, usageText } from "./api.ts";
import { configFile, loadConfig, saveConfig } from "./config.ts";
import { sshCommandWords } from "./ssh.ts";
import { createEscape } from "./terminal.ts";
import { Command } from "commander";
import { execa } from "execa";
import { completionScript } from "./completion.ts";
import { eventTable, seenIds } from "./events.ts";

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

  it("still leaves after the terminal answers the guest's cursor query (busybox's prompt) or an arrow key", () => {
    const escape = createEscape();
    expect(escape(Buffer.from("echo hi\r"))).toEqual({ send: Buffer.from("echo hi\r"), leave: false });
    // The answer to ESC [ 6 n arrives after the Enter, before the person types ~.
    expect(escape(Buffer.from("\x1b[30;15R"))).toEqual({ send: Buffer.from("\x1b[30;15R"), leave: false });
    expect(escape(Buffer.from("\x1bOA"))).toEqual({ send: Buffer.from("\x1bOA"), leave: false });
    expect(escape(Buffer.from("~."))).toEqual({ send: Buffer.alloc(0), leave: true });
    // Text typed after a sequence is not the start of a line.
    const other = createEscape();
    expect(other(Buffer.from("\x1b[Dx~."))).toEqual({ send: Buffer.from("\x1b[Dx~."), leave: false });
  });
});

describe("hangar ssh's words", () => {
  it.each([
    [
      ["web-1", "ls", "-la"],
      ["web-1", "--", "ls", "-la"],
    ],
    [
      ["-i", "key", "web-1", "uname", "-a"],
      ["-i", "key", "web-1", "--", "uname", "-a"],
    ],
    [
      ["web-1", "-i", "key", "-o", "ConnectTimeout=5", "ls"],
      ["web-1", "-i", "key", "-o", "ConnectTimeout=5", "--", "ls"],
    ],
    [
      ["--user=root", "web-1", "id", "-u"],
      ["--user=root", "web-1", "--", "id", "-u"],
    ],
    [
      ["web-1", "--", "uname", "-a"],
      ["web-1", "--", "uname", "-a"],
    ],
    [
      ["web-1", "-l", "root"],
      ["web-1", "-l", "root"],
    ],
    [["web-1"], ["web-1"]],
  ])("reads %j as ssh would: %j", (words, expected) => {
    expect(sshCommandWords(words)).toEqual(expected);
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

  it("names the CLI's flags where the server's sentence names its input fields", () => {
    const message = "The command did not finish within 2 s and was ended; give it a larger timeoutSec.";
    const error = new TRPCClientError(message, { result: { error: { message, code: -1, data: { code: "TIMEOUT" } } } });
    expect(asCliError(error).message).toBe("The command did not finish within 2 s and was ended; give it a larger --timeout.");
  });

  it("is 8 when the server cannot be reached", () => {
    expect(asCliError(new TRPCClientError("fetch failed")).exitCode).toBe(EXIT.UNREACHABLE);
  });

  it("is 3 for a token the server does not accept, saying to log in again rather than the web's sentence", () => {
    const error = new TRPCClientError("Sign in first.", { result: { error: { message: "Sign in first.", code: -1, data: { code: "UNAUTHORIZED" } } } });
    expect(asCliError(error)).toMatchObject({ exitCode: EXIT.UNAUTHENTICATED, message: expect.stringMatching(/hangar login/) as unknown });
  });

  it("says where and why the server could not be reached, keeping the fetch wrapper's sentence", () => {
    const refused = new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" }) });
    const failure = unreachable("http://127.0.0.1:9", refused);
    expect(failure).toMatchObject({
      exitCode: EXIT.UNREACHABLE,
      message: "Cannot reach Hangar at http://127.0.0.1:9: nothing answers there (connection refused).",
    });
    expect(asCliError(new TRPCClientError(failure.message, { cause: failure }))).toBe(failure);
    const tls = new TypeError("fetch failed", {
      cause: new Error("80BC:error:0A00010B:SSL routines::wrong version number:../deps/openssl/ssl/record/ssl3_record.c:350:\n"),
    });
    expect(unreachable("https://h", tls).message).toBe("Cannot reach Hangar at https://h: 80BC:error:0A00010B:SSL routines::wrong version number.");
  });
});

describe("local files", () => {
  it("that cannot be read are one sentence and exit 5, naming the flag", async () => {
    await expect(readLocalFile(path.join(work, "missing.yaml"), "--user-data")).rejects.toMatchObject({
      exitCode: EXIT.NOT_FOUND,
      message: `Cannot read --user-data ${path.join(work, "missing.yaml")}: no such file.`,
    });
    await expect(readLocalFile(work, "--user-data")).rejects.toMatchObject({ message: `Cannot read --user-data ${work}: it is a directory.` });
  });
});

describe("Hangar's address", () => {
  it("is an http or https origin; anything else is a usage error that shows the form", () => {
    expect(hangarOrigin("https://hangar.example/vms?x=1")).toBe("https://hangar.example");
    expect(hangarOrigin("http://127.0.0.1:3000")).toBe("http://127.0.0.1:3000");
    for (const raw of ["localhost:3000", "127.0.0.1:3000", "hangar.example", "ftp://hangar.example"]) {
      expect(() => hangarOrigin(raw)).toThrow(CliError);
      expect(() => hangarOrigin(raw)).toThrow(/http:\/\/ or https:\/\//);
    }
  });
});

describe("bash completion", () => {
  it("finds the command past options and completes subcommands, options and VM names where a VM goes", async () => {
    const program = new Command("hangar").option("--json");
    program.command("get").argument("<vm>");
    program.command("stop").argument("<vm...>").option("--timeout <sec>");
    program.command("create").argument("<name>").option("--cpus <n>").option("--memory <MiB>");
    program.command("snapshot").command("ls").argument("<vm>");
    // `hangar ls --names` answers with two VMs.
    const script = `hangar() { printf "web-1\\nweb-2\\n"; }\n${completionScript(program, "bash")}`;
    const complete = async (...words: string[]) => {
      const line = `COMP_WORDS=(hangar ${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length}; _hangar; echo "\${COMPREPLY[*]}"`;
      return (await execa("bash", ["--norc", "--noprofile", "-c", `${script}\n${line}`])).stdout;
    };
    expect(await complete("--json", "g")).toBe("get");
    expect(await complete("snapshot", "")).toBe("ls");
    expect(await complete("snapshot", "ls", "w")).toBe("web-1 web-2");
    expect(await complete("get", "web-1", "w")).toBe("");
    expect(await complete("--json", "stop", "--timeout", "5", "web-1", "web-")).toBe("web-1 web-2");
    expect(await complete("create", "--cpus", "2", "x", "--m")).toBe("--memory");
    expect(await complete("create", "")).toBe("");
  });
});

describe("event lines", () => {
  const at = (second: number) => new Date(2026, 2, 4, 9, 5, second);
  const started = { id: "e1", createdAt: at(1), vmName: "web-1", action: "start", ok: true, message: "Running as pid 42, SSH on port 40022" };
  const failed = { id: "e2", createdAt: at(2), vmName: "db", action: "stop", ok: false, message: "Stop failed: qemu did not finish in time" };

  it("are a table: a header, then time, VM, action, ok or FAILED and the message in aligned columns", () => {
    const lines = eventTable([started, failed]);
    expect([lines.header(), lines.line(started), lines.line(failed)]).toEqual([
      "TIME                 VM            ACTION     RESULT  MESSAGE",
      "2026-03-04 09:05:01  web-1         start      ok      Running as pid 42, SSH on port 40022",
      "2026-03-04 09:05:02  db            stop       FAILED  Stop failed: qemu did not finish in time",
    ]);
  });

  it("sit under the header with no past event to size the columns (--follow --limit 0)", () => {
    const lines = eventTable([]);
    expect([lines.header(), lines.line(started)]).toEqual([
      "TIME                 VM            ACTION     RESULT  MESSAGE",
      "2026-03-04 09:05:01  web-1         start      ok      Running as pid 42, SSH on port 40022",
    ]);
  });

  it("line a live event up with the past ones printed before it, and end with their last word", () => {
    const pastEvent = { ...started, vmName: "web-server-eu-1" };
    const lines = eventTable([pastEvent]);
    expect([lines.header(), lines.line(pastEvent), lines.line(failed)]).toEqual([
      "TIME                 VM               ACTION     RESULT  MESSAGE",
      "2026-03-04 09:05:01  web-server-eu-1  start      ok      Running as pid 42, SSH on port 40022",
      "2026-03-04 09:05:02  db               stop       FAILED  Stop failed: qemu did not finish in time",
    ]);
    // An event stored without a VM name, and one without a message: no padding ends a line.
    expect(eventTable([]).line({ createdAt: at(3), vmName: null, action: "tags", ok: true, message: "" })).toBe(
      "2026-03-04 09:05:03                tags       ok",
    );
  });

  it("keep their columns for the lifecycle's actions, and widen them from the line a wider cell arrives", () => {
    const lines = eventTable([started]);
    const reconciled = { ...started, action: "reconcile", ok: false, message: "qemu exited unexpectedly" };
    expect(lines.line(reconciled)).toBe("2026-03-04 09:05:01  web-1         reconcile  FAILED  qemu exited unexpectedly");
    const longer = { ...started, vmName: "a-much-longer-name", action: "snapshot-create", message: "Snapshot s1 (115 ms)" };
    expect(lines.line(longer)).toBe("2026-03-04 09:05:01  a-much-longer-name  snapshot-create  ok      Snapshot s1 (115 ms)");
    expect(lines.line(started)).toBe("2026-03-04 09:05:01  web-1               start            ok      Running as pid 42, SSH on port 40022");
  });

  it("are printed once each: an event seen again (a replay after a reconnect) is known, until it is among the oldest forgotten", () => {
    const seen = seenIds(2);
    expect([seen.first("a"), seen.first("a"), seen.first("b"), seen.first("c")]).toEqual([true, false, true, true]);
    // Two are kept: "a" was forgotten, "c" is still known.
    expect([seen.first("c"), seen.first("a")]).toEqual([false, true]);
  });
});

describe("a VM's usage in hangar get", () => {
  const none = {
    at: 0,
    cpuPercent: null,
    rssBytes: null,
    guestMemTotalBytes: null,
    guestMemUsedBytes: null,
    diskReadBytesPerSec: null,
    diskWriteBytesPerSec: null,
    diskReadOpsPerSec: null,
    diskWriteOpsPerSec: null,
    netRxBytesPerSec: null,
    netTxBytesPerSec: null,
  };
  it("says each figure measured, in units a person reads, and leaves out the others", () => {
    expect(
      usageText({
        ...none,
        cpuPercent: 12.6,
        rssBytes: 300 * 2 ** 20,
        guestMemTotalBytes: 2 ** 30,
        guestMemUsedBytes: 100 * 2 ** 20,
        diskReadBytesPerSec: 512,
        diskWriteBytesPerSec: 3 * 2 ** 20,
        netRxBytesPerSec: 2048,
        netTxBytesPerSec: 0,
      }),
    ).toBe("CPU 13 %; guest memory 100 MiB used of 1024 MiB; qemu resident 300 MiB; disk read 512 B/s, write 3.0 MiB/s; network in 2.0 KiB/s, out 0 B/s");
    // The first sample has no CPU share yet; a guest without a balloon driver, no memory of its own; NAT, no network figures.
    expect(usageText({ ...none, rssBytes: 2 ** 27, diskReadBytesPerSec: 0, diskWriteBytesPerSec: 0 })).toBe(
      "qemu resident 128 MiB; disk read 0 B/s, write 0 B/s",
    );
    expect(usageText(none)).toBe("");
  });
});
