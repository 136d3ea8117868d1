// The hangar CLI end to end: a real Hangar HTTP server (tRPC, sign-in, terminal bridge) on
// the real qemu driver booting the tiny guest, and the CLI run as a user would, through its
// launcher. login with email and password, create, start, wait, `hangar ssh -- uname -a`
// with the user's own key (added on their account, installed by cloud-init), ssh's own
// ProxyCommand through `hangar proxy`, push and pull over it, `hangar console` in a PTY
// (script) and its --log, --json, and `hangar events --follow` printing the walk's events as
// they happen, in the columns of past events.
import { execa, type ResultPromise } from "execa";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpServer } from "../server/http-server.ts";
import { callerFor, createTestHangar, tinyImage, type TestHangar } from "../server/testing/fixtures.ts";
import { REPO_ROOT } from "../server/testing/paths.ts";

const LAUNCHER = path.join(REPO_ROOT, "bin", "hangar.mjs");
const work = mkdtempSync(path.join(os.tmpdir(), "hangar-cli-"));
const configHome = path.join(work, "config");
const key = path.join(work, "id_ed25519");
/** ssh without the person's own ~/.ssh: only the test's key and known_hosts. */
const sshOptions = ["-o", `UserKnownHostsFile=${path.join(work, "known_hosts")}`, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=30"];
const env = { XDG_CONFIG_HOME: configHome, HANGAR_URL: "", HANGAR_TOKEN: "" };

let t: TestHangar;
let server: http.Server;
let url = "";

const hangar = (args: string[], options: { input?: string } = {}) =>
  execa(process.execPath, [LAUNCHER, ...args], { env, extendEnv: true, reject: false, input: options.input, timeout: 300_000 });

/** `hangar events --follow` processes still running, ended after the walk (or when it fails). */
const followers: ResultPromise[] = [];
/** `hangar ARGS`, left running: what it has printed so far, and how it ended once stopped. */
function follow(args: string[]) {
  const run = execa(process.execPath, [LAUNCHER, ...args], { env, extendEnv: true, reject: false });
  followers.push(run);
  let out = "";
  run.stdout?.on("data", (chunk: Buffer) => (out += chunk.toString()));
  return {
    out: () => out,
    stop: async () => {
      run.kill();
      return run;
    },
  };
}

beforeAll(async () => {
  server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  url = `http://127.0.0.1:${port}`;
  t = await createTestHangar({ settings: { PORT: port } });
  createHttpServer(
    { hangar: t.hangar, dev: false, pages: { handle: async (_q, r) => void r.end(), handleUpgrade: async (_q, s) => void s.destroy() } },
    server,
  );
  await tinyImage(t.hangar);
  const admin = await callerFor(t.hangar, "admin");
  await admin.user.add({ email: "dev@test.hangar", name: "dev", password: "a long password", role: "operator" });
  await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "dev@laptop", "-f", key]);
});

afterAll(async () => {
  for (const run of followers) run.kill();
  for (const vm of await t.hangar.db.vm.findMany()) {
    await t.hangar.lifecycle.stopVm(vm.id, 0, "test").catch(() => undefined);
    await t.hangar.lifecycle.deleteVm(vm.id, "test").catch(() => undefined);
  }
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  t.hangar.terminals.close();
  t.hangar.consoles.closeAll();
  await t.cleanup();
  rmSync(work, { recursive: true, force: true });
});

describe("hangar CLI", () => {
  it("logs in, creates and starts a VM, and reaches it with ssh and the console", async () => {
    // Not logged in yet: exit 3 with what to do.
    const early = await hangar(["ls"]);
    expect(early.exitCode).toBe(3);
    expect(early.stderr).toMatch(/hangar login/);

    // Answers piped one per line, as to the prompts (no token: email, then password); input
    // that ends before the last answer is a usage error that says so.
    const cut = await hangar(["login", url], { input: "\ndev@test.hangar\n" });
    expect(cut.exitCode).toBe(2);
    expect(cut.stderr).toMatch(/No answer to "Password": the input ended/);
    const piped = await hangar(["--json", "login", url], { input: "\ndev@test.hangar\na long password\n" });
    expect(piped.exitCode, piped.stderr).toBe(0);
    expect(JSON.parse(piped.stdout)).toMatchObject({ url, email: "dev@test.hangar" });

    const login = await hangar(["--json", "login", url, "--email", "dev@test.hangar", "--password-stdin"], { input: "a long password\n" });
    expect(login.stderr).toBe("");
    expect(JSON.parse(login.stdout)).toMatchObject({ url, email: "dev@test.hangar", role: "operator" });
    // Followers from here on: one for people, one for scripts (only new events, with --limit 0).
    const listening = t.hangar.bus.listeners();
    const watching = follow(["events", "--follow"]);
    const watchingJson = follow(["--json", "events", "-f", "--limit", "0"]);
    // And one whose reader stops after the header, as `| head -1` does: its next line ends it, quietly.
    const cutShort = execa(process.execPath, [LAUNCHER, "events", "-f", "--limit", "0"], { env, extendEnv: true, reject: false });
    followers.push(cutShort);
    cutShort.stdout?.once("data", () => cutShort.stdout?.destroy());
    await expect.poll(() => t.hangar.bus.listeners(), { timeout: 30_000 }).toBe(listening + 3);
    const file = path.join(configHome, "hangar", "config.json");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);

    // The user's own key, on their account: the VM gets it through cloud-init.
    const added = await hangar(["key", "add", `${key}.pub`]);
    expect(added.exitCode, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/^Added dev@laptop \(SHA256:/);
    expect(JSON.parse((await hangar(["key", "ls", "--json"])).stdout)).toMatchObject([{ name: "dev@laptop" }]);
    expect((await hangar(["key", "add", `${key}.pub`])).exitCode).toBe(6);
    expect((await hangar(["key", "rm", "nobody@nowhere"])).exitCode).toBe(5);

    const images = await hangar(["image", "ls", "--json"]);
    const [image] = JSON.parse(images.stdout) as { name: string }[];
    const created = await hangar(["create", "cli-1", "--image", image?.name ?? "", "--memory", "256", "--json"]);
    expect(created.exitCode, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: "cli-1", state: "Stopped" });
    expect((await hangar(["resize", "cli-1"])).exitCode).toBe(2);
    const resized = await hangar(["resize", "cli-1", "--memory", "320", "--json"]);
    expect(resized.exitCode, resized.stderr).toBe(0);
    expect(JSON.parse(resized.stdout)).toMatchObject({ name: "cli-1", cpus: 1, memoryMiB: 320 });
    expect((await hangar(["autostart", "cli-1", "maybe"])).exitCode).toBe(2);
    expect(JSON.parse((await hangar(["autostart", "cli-1", "on", "--json"])).stdout)).toEqual({ name: "cli-1", autostart: true, order: null, delaySec: 0 });
    expect((await hangar(["autostart", "cli-1", "on", "--order", "1", "--delay", "20"])).stdout).toBe("cli-1 autostart on (order 1, then 20 s)");
    expect((await hangar(["start", "cli-1"])).stdout).toMatch(/cli-1 Running/);
    const waited = await hangar(["wait", "cli-1", "ready", "--timeout", "300", "--json"]);
    expect(waited.exitCode, waited.stderr).toBe(0);
    expect(JSON.parse(waited.stdout)).toMatchObject({ name: "cli-1", readyState: "ready" });
    // A state in any case; running out of time names the VM as the person did, and exits 7.
    const late = await hangar(["wait", "cli-1", "stopped", "--timeout", "1"]);
    expect([late.exitCode, late.stderr.trim()]).toEqual([7, 'hangar: VM "cli-1" did not reach Stopped within 1 s (it is Running).']);
    // resume is for a Suspended VM: a Running one is left alone, not restarted.
    const resumed = await hangar(["resume", "cli-1"]);
    expect([resumed.exitCode, resumed.stderr.trim()]).toEqual([6, 'hangar: cli-1: VM "cli-1" is Running, not Suspended; nothing to resume.']);
    const listed = JSON.parse((await hangar(["ls", "--json"])).stdout) as { name: string; state: string }[];
    expect(listed.map((vm) => [vm.name, vm.state])).toEqual([["cli-1", "Running"]]);
    // Filters go to the server.
    expect((await hangar(["ls", "--state", "Running", "--search", "cli", "--mine", "--names"])).stdout).toBe("cli-1");
    expect((await hangar(["ls", "--state", "Stopped", "--names"])).stdout).toBe("");
    expect((await hangar(["ls", "--state", "Sleeping"])).exitCode).toBe(2);
    // States in any case, as people type them; --names with --json is an array.
    expect((await hangar(["ls", "--state", "running", "--names", "--json"])).stdout).toBe('["cli-1"]');

    // No such VM: exit 5. A running one shows its host's newest usage sample (two make a CPU
    // share; the guest's own memory figures come once its balloon driver has reported).
    expect((await hangar(["get", "nope"])).exitCode).toBe(5);
    await t.hangar.metrics.tick();
    await t.hangar.metrics.tick();
    expect((await hangar(["get", "cli-1"])).stdout).toMatch(/^usage: CPU \d+ %; (guest memory \d+ MiB used of \d+ MiB; )?qemu resident \d+ MiB; disk read /m);

    // hangar ssh: the person's own ssh, their own key, through the bridge.
    // `-o OPTION` before the VM's name, as ssh takes it: each -o takes one value, not the name too.
    const uname = await hangar(["ssh", "-i", key, ...sshOptions, "cli-1", "--", "uname", "-a"]);
    expect(uname.exitCode, uname.stderr).toBe(0);
    expect(uname.stdout).toMatch(/^Linux cli-1 /);
    // As ssh reads it: the command follows the VM, its options its own (-la is not hangar's).
    const rootListing = await hangar(["ssh", "-i", key, ...sshOptions, "cli-1", "ls", "-la", "/"]);
    expect(rootListing.exitCode, rootListing.stderr).toBe(0);
    expect(rootListing.stdout).toMatch(/^d.* proc$/m);
    // No key offered and none on the account: ssh's refusal, then what to do about it.
    const removed = await hangar(["key", "rm", "dev@laptop"]);
    expect(removed.exitCode, removed.stderr).toBe(0);
    const keyless = await hangar(["ssh", "cli-1", ...sshOptions.flatMap((o, i) => (i % 2 === 1 ? [`--option=${o}`] : [])), "--", "true"]);
    expect(keyless.exitCode).toBe(255);
    expect(keyless.stderr).toMatch(/your account has no SSH keys, so the VM has none of yours: add one \(`hangar key add/);
    expect((await hangar(["key", "add", `${key}.pub`])).exitCode).toBe(0);
    // A key added after the VM's first boot: cloud-init does not give it; key install does.
    const later = path.join(work, "later_ed25519");
    await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "dev@desk", "-f", later]);
    expect((await hangar(["key", "add", `${later}.pub`])).exitCode).toBe(0);
    const laterFlags = ["-i", later, ...sshOptions.flatMap((o, i) => (i % 2 === 1 ? [`--option=${o}`] : []))];
    const refused = await hangar(["ssh", ...laterFlags, "cli-1", "--", "true"]);
    expect(refused.exitCode).toBe(255);
    expect(refused.stderr).toMatch(/if cli-1 was made before you added your key, `hangar key install cli-1` gives it your keys/);
    expect(JSON.parse((await hangar(["key", "install", "cli-1", "--json"])).stdout)).toEqual({ added: 1, keys: 2, user: "hangar" });
    expect((await hangar(["key", "install", "cli-1"])).stdout).toBe("cli-1 already has your 2 keys (user hangar).");
    const admitted = await hangar(["ssh", ...laterFlags, "cli-1", "--", "echo", "in"]);
    expect([admitted.exitCode, admitted.stdout], admitted.stderr).toEqual([0, "in"]);
    // push and pull: files both ways as a tar stream over the same ssh, names with spaces too.
    const sshFlags = ["-i", key, ...sshOptions.flatMap((o, i) => (i % 2 === 1 ? [`--option=${o}`] : []))];
    const site = path.join(work, "site");
    mkdirSync(path.join(site, "css"), { recursive: true });
    writeFileSync(path.join(site, "index.html"), "<h1>hello</h1>\n");
    writeFileSync(path.join(site, "css", "a b.css"), "body{}\n");
    const pushed = await hangar(["push", ...sshFlags, site, "cli-1:/tmp/dest dir"]);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    expect((await hangar(["exec", "cli-1", "--", "cat", "/tmp/dest dir/site/index.html", "/tmp/dest dir/site/css/a b.css"])).stdout).toBe(
      "<h1>hello</h1>\nbody{}",
    );
    const pulled = await hangar(["pull", ...sshFlags, "cli-1:/tmp/dest dir/site/css", path.join(work, "back")]);
    expect(pulled.exitCode, pulled.stderr).toBe(0);
    expect(readFileSync(path.join(work, "back", "css", "a b.css"), "utf8")).toBe("body{}\n");
    const asRoot = await hangar(["push", ...sshFlags, "--root", path.join(site, "index.html"), "cli-1:/opt/www"]);
    expect(asRoot.exitCode, asRoot.stderr).toBe(0);
    expect((await hangar(["exec", "cli-1", "--", "stat", "-c", "%U %n", "/opt/www/index.html"])).stdout).toBe("root /opt/www/index.html");
    const missing = await hangar(["pull", ...sshFlags, "cli-1:/nowhere", work]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/hangar: Copying \/nowhere failed/);
    expect((await hangar(["push", path.join(work, "nothing-here"), "cli-1:/tmp"])).exitCode).toBe(5);
    expect((await hangar(["push", site, "cli-1"])).exitCode).toBe(2);

    // The guest got the memory the resize gave it (MemTotal is what is left after the kernel's own).
    const meminfo = await hangar(["exec", "cli-1", "--", "grep", "MemTotal", "/proc/meminfo"]);
    expect(meminfo.exitCode, meminfo.stderr).toBe(0);
    expect(Number(/(\d+) kB/.exec(meminfo.stdout)?.[1]) / 1024).toBeGreaterThan(256);

    // ssh's own ProxyCommand, as a user writes it in ~/.ssh/config; the exit status comes back.
    const proxy = `'${process.execPath}' '${LAUNCHER}' proxy %h`;
    const direct = await execa(
      "ssh",
      ["-o", `ProxyCommand=${proxy}`, "-i", key, ...sshOptions, "-o", "StrictHostKeyChecking=accept-new", "hangar@cli-1", "echo through-hangar; exit 3"],
      { env: { ...process.env, ...env }, reject: false },
    );
    expect(direct.stdout.trim(), direct.stderr).toBe("through-hangar");
    expect(direct.exitCode, direct.stderr).toBe(3);

    // The serial console in a PTY: a newline brings the login prompt, ~. leaves.
    const consoleRun = execa("script", ["-qfec", `'${process.execPath}' '${LAUNCHER}' console cli-1`, "/dev/null"], {
      env: { ...process.env, ...env },
      reject: false,
      timeout: 120_000,
    });
    let seen = "";
    consoleRun.stdout?.on("data", (chunk: Buffer) => (seen += chunk.toString("latin1")));
    await expect.poll(() => seen, { timeout: 30_000 }).toMatch(/serial console/);
    consoleRun.stdin?.write("\r");
    await expect.poll(() => seen, { timeout: 60_000 }).toMatch(/login:/);
    consoleRun.stdin?.write("\r~.");
    const ended = await consoleRun;
    expect(ended.exitCode).toBe(0);
    expect(seen).toMatch(/Console closed/);
    // What it printed, without attaching: the prompts the newlines brought are in it.
    const log = await hangar(["console", "cli-1", "--log"]);
    expect(log.exitCode, log.stderr).toBe(0);
    expect(log.stdout).toMatch(/cli-1 login:/);

    // Port forwards, added while it runs.
    const forwarded = await hangar(["--json", "forward", "add", "cli-1", "8080"]);
    expect(forwarded.exitCode, forwarded.stderr).toBe(0);
    expect(JSON.parse(forwarded.stdout)).toMatchObject([{ guestPort: 8080, hostPort: 0 }]);
    expect((await hangar(["forward", "ls", "cli-1"])).stdout).toMatch(/^8080 +any +\d+$/m);
    expect(JSON.parse((await hangar(["--json", "forward", "rm", "cli-1", "8080"])).stdout)).toEqual([]);

    // Stop and delete through the CLI; the exit codes say what happened.
    expect((await hangar(["delete", "cli-1"])).exitCode).toBe(6);
    expect((await hangar(["stop", "cli-1", "--timeout", "0"])).exitCode).toBe(0);
    // Snapshots of the stopped VM's disk.
    expect((await hangar(["snapshot", "create", "cli-1", "before-upgrade"])).stdout).toBe("cli-1: took snapshot before-upgrade; snapshots: before-upgrade");
    expect(JSON.parse((await hangar(["snapshot", "ls", "cli-1", "--json"])).stdout)).toMatchObject([{ name: "before-upgrade", vmStateBytes: 0 }]);
    expect((await hangar(["snapshot", "revert", "cli-1", "nope"])).exitCode).toBe(5);
    expect((await hangar(["snapshot", "rm", "cli-1", "before-upgrade"])).stdout).toBe("cli-1: deleted snapshot before-upgrade; snapshots: (none)");
    // Several VMs at once: each goes on its own, one that fails says why and sets the exit code.
    // Without --image, the image the New VM form picks: the built-in one.
    const made = await hangar(["create", "cli-0", "--tag", "Web", "--tag", "ci", "--json"]);
    expect(made.exitCode, made.stderr).toBe(0);
    expect(JSON.parse(made.stdout)).toMatchObject({ name: "cli-0", image: { name: image?.name } });
    expect((await hangar(["rename", "cli-0", "cli-2"])).stdout).toMatch(/^cli-2 Stopped/);
    // A protected VM is not deleted until its protection is off.
    expect((await hangar(["protect", "cli-2", "on"])).stdout).toBe("cli-2 protection on");
    expect((await hangar(["get", "cli-2"])).stdout).toMatch(/^protection: on$/m);
    // Why its last action failed, as the VM page says it.
    await t.hangar.db.vm.update({ where: { name: "cli-2" }, data: { error: "Start failed: qemu exited with code 1" } });
    expect((await hangar(["get", "cli-2"])).stdout).toMatch(/^error: Start failed: qemu exited with code 1$/m);
    const kept = await hangar(["delete", "cli-2"]);
    expect([kept.exitCode, kept.stderr.trim()]).toEqual([6, 'hangar: cli-2: VM "cli-2" is protected from deletion; turn its protection off first.']);
    expect((await hangar(["protect", "cli-2", "off"])).stdout).toBe("cli-2 protection off");
    // Tags: added, taken off, listed by.
    expect((await hangar(["tag", "add", "cli-1", "web", "team-a"])).stdout).toBe("cli-1: team-a web");
    expect((await hangar(["tag", "rm", "cli-2", "CI"])).stdout).toBe("cli-2: web");
    expect((await hangar(["ls", "--tag", "web", "--names"])).stdout).toBe("cli-1\ncli-2");
    expect(JSON.parse((await hangar(["tag", "ls", "--json"])).stdout)).toEqual([
      { tag: "team-a", vms: 1 },
      { tag: "web", vms: 2 },
    ]);
    const badTag = await hangar(["tag", "add", "cli-1", "web/"]);
    expect([badTag.exitCode, badTag.stderr.trim()]).toEqual([
      2,
      "hangar: One of those is not a tag: a tag is 1 to 32 letters, digits, _ . + and -, starting with a letter or digit.",
    ]);
    // A read-only token made with the CLI reads, and is refused changes; then it is revoked.
    const readOnly = await hangar(["token", "create", "ci-ro", "--read-only"]);
    expect(readOnly.stdout).toMatch(/^hgr_/);
    const asService = (args: string[]) =>
      execa(process.execPath, [LAUNCHER, ...args], { env: { ...env, HANGAR_URL: url, HANGAR_TOKEN: readOnly.stdout.trim() }, reject: false });
    expect((await asService(["ls", "--names"])).stdout).toBe("cli-1\ncli-2");
    const refusedChange = await asService(["tag", "add", "cli-1", "x"]);
    expect([refusedChange.exitCode, refusedChange.stderr.trim()]).toEqual([
      4,
      'hangar: Token ci-ro is read-only: it reads, and changes nothing. Use a token made without "Read only".',
    ]);
    expect((await hangar(["token", "ls"])).stdout).toMatch(/^ci-ro +hgr_\S+ +read only +never +\d{4}-\d\d-\d\d \d\d:\d\d +active$/m);
    expect((await hangar(["token", "revoke", "ci-ro"])).stdout).toBe("Token ci-ro revoked");
    // A revoked token: exit 3, and what to do rather than the web's "Sign in first".
    const revoked = await asService(["ls"]);
    expect([revoked.exitCode, revoked.stderr]).toEqual([3, expect.stringMatching(/does not accept your API token .*hangar login/) as unknown]);
    // Pools are an admin's to make.
    const poolMade = await hangar(["pool", "create", "cli-pool", "--image", image?.name ?? "", "--size", "1"]);
    expect([poolMade.exitCode, poolMade.stderr.trim()]).toEqual([4, "hangar: Only admins can do this."]);
    // Images are everyone's: only an admin makes one.
    const publish = await hangar(["image", "publish", "cli-2", "cli-image"]);
    expect([publish.exitCode, publish.stderr.trim()]).toEqual([4, "hangar: Only admins can do this."]);
    // Anyone may look at an image, and see what uses it.
    const imageShown = await hangar(["image", "get", image?.name ?? ""]);
    expect([imageShown.exitCode, imageShown.stdout]).toEqual([
      0,
      expect.stringMatching(/^name: hangar-tiny\n[\s\S]*^status: ready$[\s\S]*^used by: .*VM cli-2/m),
    ]);
    expect(JSON.parse((await hangar(["image", "get", image?.name ?? "", "--json"])).stdout)).toMatchObject({ name: "hangar-tiny", status: "ready" });
    // An import says how the image boots only as bios or uefi, refused before it asks the server.
    const firmware = await hangar(["image", "import", "cli-fw", "--url", "https://example.com/x.qcow2", "--firmware", "coreboot"]);
    expect([firmware.exitCode, firmware.stderr]).toEqual([2, expect.stringMatching(/Allowed choices are bios, uefi/)]);
    const deleted = await hangar(["--json", "delete", "cli-1", "nope", "cli-2"]);
    expect(deleted.exitCode).toBe(5);
    expect(deleted.stderr).toMatch(/^hangar: nope: No VM named "nope"/m);
    expect(JSON.parse(deleted.stdout)).toMatchObject([
      { name: "cli-1", state: "Deleted" },
      { name: "cli-2", state: "Deleted" },
    ]);
    // The followers printed the walk's events as they were recorded: a person's lines in the
    // columns of `hangar events`, a script's the objects of `hangar events --json`; a state in
    // progress (Starting) and the row's removal after Deleted (Gone) are no events.
    const isDeleted = (line: string) => /^\S+ \S+ +cli-2 +delete +ok +Deleted$/m.test(line);
    await expect.poll(watching.out, { timeout: 30_000 }).toSatisfy(isDeleted);
    await expect.poll(watchingJson.out, { timeout: 30_000 }).toMatch(/"action":"delete"[^\n]*"vmName":"cli-2"/);
    const quiet = await cutShort;
    expect([quiet.exitCode, quiet.stderr]).toEqual([0, ""]);
    const shown = String((await watching.stop()).stdout);
    const scripted = String((await watchingJson.stop()).stdout);
    const human = shown.split("\n");
    expect(human[0]).toMatch(/^TIME +VM +ACTION +RESULT +MESSAGE$/);
    expect(human).toContainEqual(expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  cli-1 +start +ok +Running as pid \d+, SSH on port \d+$/));
    expect(human).toContainEqual(expect.stringMatching(/^\S+ \S+  cli-1 +stop +ok +/));
    expect(human).toContainEqual(expect.stringMatching(/^\S+ \S+  cli-2 +protection +ok +/));
    expect(shown).not.toMatch(/Starting|Gone/);
    const live = scripted
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(live.map((e) => `${String(e.vmName)} ${String(e.action)} ${String(e.ok)}`)).toEqual(
      expect.arrayContaining(["cli-1 start true", "cli-2 delete true"]),
    );
    // The same objects `hangar events --json` prints of the past, key for key (a deleted VM's
    // events no longer name its id: the live one was read before or after the row went).
    const past = (await hangar(["--json", "events", "--limit", "500"])).stdout.split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const event of live) {
      const stored = past.find((e) => e.id === event.id);
      expect(Object.keys(event).sort()).toEqual(Object.keys(stored ?? {}).sort());
      expect({ ...event, vmId: undefined }).toEqual({ ...stored, vmId: undefined });
    }
    // A deleted VM's events, by the name it had; a name no VM ever had is an error.
    const gone = await hangar(["events", "cli-2"]);
    expect([gone.exitCode, gone.stderr.trim()]).toEqual([0, 'hangar: no VM is named "cli-2" now; these are the events of the deleted VM(s) of that name.']);
    expect(gone.stdout).toMatch(/^\S+ \S+ +cli-2 +delete +ok +Deleted$/m);
    expect(gone.stdout).not.toMatch(/cli-1/);
    const never = await hangar(["events", "never-was"]);
    expect([never.exitCode, never.stderr.trim()]).toEqual([5, 'hangar: No VM is named "never-was", and none was; `hangar ls` lists them.']);
    // One walk through every command, each run as its own process (about a second of start-up
    // each): it needs more than the default while the machine is busy with other suites.
  }, 300_000);

  it("shows an admin the audit log, by stream, user, VM and action; the walk's actions are its user's", async () => {
    const admin = await callerFor(t.hangar, "admin");
    await admin.user.add({ email: "boss@test.hangar", name: "boss", password: "a long password", role: "admin" });
    const bossEnv = { ...env, XDG_CONFIG_HOME: path.join(work, "boss-config") };
    const asBoss = (args: string[], input?: string) => execa(process.execPath, [LAUNCHER, ...args], { env: bossEnv, extendEnv: true, reject: false, input });
    const login = await asBoss(["login", url, "--email", "boss@test.hangar", "--password-stdin"], "a long password\n");
    expect(login.exitCode, login.stderr).toBe(0);
    const signIns = await asBoss(["--json", "audit", "--stream", "audit", "--action", "sign-in", "--user", "dev@test.hangar"]);
    expect(signIns.exitCode, signIns.stderr).toBe(0);
    const entries = JSON.parse(signIns.stdout) as { actor: string; action: string; stream: string }[];
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.every((e) => e.actor === "dev@test.hangar" && e.action === "sign-in" && e.stream === "audit")).toBe(true);
    // The walk's VM actions are filed under its user; a deleted VM's are found by its name.
    const stops = JSON.parse((await asBoss(["--json", "audit", "--user", "dev@test.hangar", "--action", "stop"])).stdout) as { vmName: string }[];
    expect(stops.map((e) => e.vmName)).toContain("cli-1");
    const table = await asBoss(["audit", "--vm", "cli-2", "--limit", "500"]);
    expect(table.stdout.split("\n")[0]).toMatch(/^TIME +WHO +ACTION +RESULT +ON +MESSAGE$/);
    // The CLI calls with the token its login made: that token, and whose it is.
    expect(table.stdout).toMatch(/^\S+ \S+ +token cli .*\(dev@test\.hangar\) +delete +ok +cli-2 +Deleted$/m);
    expect(table.stdout).not.toMatch(/cli-1/);
    const nobody = await asBoss(["audit", "--user", "nobody@test.hangar"]);
    expect([nobody.exitCode, nobody.stderr.trim()]).toEqual([5, 'hangar: No user has the email "nobody@test.hangar".']);
    expect((await asBoss(["audit", "--stream", "everything"])).exitCode).toBe(2);

    // An admin gives a VM to another user, or to nobody; dev (an operator) may not.
    const image = await t.hangar.db.image.findFirstOrThrow();
    await admin.vm.create({ name: "boss-made", imageId: image.id, cpus: 1, memoryMiB: 128 });
    expect(JSON.parse((await asBoss(["--json", "owner", "boss-made", "dev@test.hangar"])).stdout)).toMatchObject({
      name: "boss-made",
      owner: "dev@test.hangar",
    });
    expect((await hangar(["ls", "--mine", "--names"])).stdout).toBe("boss-made");
    expect((await hangar(["owner", "boss-made", "--none"])).exitCode).toBe(4);
    expect((await asBoss(["owner", "boss-made", "--none"])).stdout).toBe("boss-made owner none");
    expect((await asBoss(["owner", "boss-made", "nobody@test.hangar"])).exitCode).toBe(5);
    expect((await asBoss(["owner", "boss-made"])).exitCode).toBe(2);

    // Hosts, by name: listed, asked for at create, filtered on.
    const here = t.hangar.hosts.name;
    expect(JSON.parse((await asBoss(["--json", "host", "ls"])).stdout)).toEqual([expect.objectContaining({ name: here, online: true })]);
    expect((await asBoss(["host", "ls"])).stdout).toMatch(new RegExp(`^NAME +STATUS +ACCEL .*\n${here} +online +`));
    const placed = await asBoss(["--json", "create", "placed", "--memory", "128", "--host", here]);
    expect(placed.exitCode, placed.stderr).toBe(0);
    expect(JSON.parse(placed.stdout)).toMatchObject({ name: "placed", host: { name: here } });
    const nowhere = await asBoss(["create", "nowhere", "--host", "nope"]);
    expect([nowhere.exitCode, nowhere.stderr.trim()]).toEqual([5, 'hangar: No host named "nope"; `hangar host ls` lists them.']);
    expect((await asBoss(["ls", "--host", here, "--names"])).stdout.split("\n")).toContain("placed");
    const moved = await asBoss(["move", "placed", here]);
    expect([moved.exitCode, moved.stderr.trim()]).toEqual([
      2,
      t.hangar.cluster.shared
        ? `hangar: VM "placed" is on host ${here} already.`
        : "hangar: This Hangar is a single host (several hosts share one PostgreSQL database), so there is no other host to move a VM to.",
    ]);
    const evacuated = await asBoss(["host", "evacuate", here]);
    expect([evacuated.exitCode, evacuated.stderr.trim()]).toEqual(
      t.hangar.cluster.shared
        ? [6, `hangar: No other host is online and out of maintenance to take host ${here}'s VMs; start Hangar on another host first.`]
        : [2, "hangar: This Hangar is a single host (several hosts share one PostgreSQL database), so there is no other host to take its VMs."],
    );
    const removed = await asBoss(["host", "rm", here]);
    expect([removed.exitCode, removed.stderr.trim()]).toEqual([
      2,
      t.hangar.cluster.shared
        ? `hangar: Host ${here} is online; stop its Hangar first, then remove it (a Hangar started there later registers it anew).`
        : "hangar: This Hangar is a single host (several hosts share one PostgreSQL database); it has no other host to remove.",
    ]);
    // One host: no HOST column. A VM on a second host, offline since an hour: the column
    // shows, and `get` answers from the database without asking the guest through its host.
    expect((await asBoss(["ls"])).stdout).not.toMatch(/HOST/);
    const gone = await t.hangar.db.host.create({
      data: { name: "gone", apiAddress: "http://127.0.0.1:9", heartbeatAt: new Date(Date.now() - 3_600_000), accelerator: "tcg", freeMemoryMiB: 0 },
    });
    const away = await admin.vm.create({ name: "away", imageId: image.id, cpus: 1, memoryMiB: 128 });
    await t.hangar.db.vm.update({ where: { id: away.id }, data: { hostId: gone.id, state: "Running" } });
    try {
      expect((await asBoss(["ls"])).stdout).toMatch(/^NAME .* HOST\n(.*\n)*away +Running .* gone \(offline\)$/m);
      const got = await asBoss(["get", "away"]);
      expect(got.exitCode, got.stderr).toBe(0);
      expect(got.stdout).toMatch(/^host: gone \(offline\)$/m);
    } finally {
      await t.hangar.db.vm.delete({ where: { id: away.id } });
      await t.hangar.db.host.delete({ where: { id: gone.id } });
    }
  }, 120_000);
});
