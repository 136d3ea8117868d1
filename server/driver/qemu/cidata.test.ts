import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { parse } from "yaml";
import { afterAll, describe, expect, it } from "vitest";
import { UserDataError, userDataProblem } from "../user-data.ts";
import { HANGAR_MERGE_TYPE, renderMetaData, renderUserData, writeCidataIso } from "./cidata.ts";

const work = mkdtempSync(path.join(os.tmpdir(), "hangar-cidata-test-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const testdata = path.join(path.dirname(fileURLToPath(import.meta.url)), "testdata", "user-data");
const KEY = "ssh-ed25519 AAAAC3Nza test@hangar";

async function readIsoFile(iso: string, name: string): Promise<string> {
  const { stdout } = await execa("isoinfo", ["-J", "-i", iso, "-x", `/${name}`], { stripFinalNewline: false });
  return stdout;
}

/** Compares with testdata/user-data/<name>.txt; UPDATE_GOLDEN=1 rewrites it. */
function golden(name: string, actual: string) {
  const file = path.join(testdata, `${name}.txt`);
  if (process.env.UPDATE_GOLDEN) writeFileSync(file, actual);
  expect(actual).toBe(readFileSync(file, "utf8"));
}

type User = string | { name: string; sudo?: string; ssh_authorized_keys?: string[]; lock_passwd?: boolean; shell?: string; groups?: unknown };
const usersOf = (cloudConfig: string) => (parse(cloudConfig) as { users: User[] }).users;
const names = (users: User[]) => users.map((u) => (typeof u === "string" ? u : u.name));
const hangarOf = (users: User[]) => users.find((u): u is Exclude<User, string> => typeof u !== "string" && u.name === "hangar");

describe("cidata ISO", () => {
  it("holds user-data (with Hangar's account), meta-data and Hangar's vendor-data under the volume label cidata", async () => {
    const iso = path.join(work, "seed.iso");
    await writeCidataIso(iso, { instanceId: "cm3vm0001", hostname: "web-1", sshAuthorizedKeys: [KEY], userData: "#cloud-config\nruncmd:\n  - echo hi\n" });
    const { stdout: volume } = await execa("isoinfo", ["-d", "-i", iso]);
    expect(volume).toMatch(/Volume id: cidata/);
    expect(await readIsoFile(iso, "meta-data")).toBe(
      'instance-id: "cm3vm0001"\nlocal-hostname: "web-1"\npublic-keys:\n  - "ssh-ed25519 AAAAC3Nza test@hangar"\n',
    );
    const userData = await readIsoFile(iso, "user-data");
    expect(userData).toBe(renderUserData("#cloud-config\nruncmd:\n  - echo hi\n", [KEY]));
    expect(await readIsoFile(iso, "vendor-data")).toBe("#cloud-config\nmanage_etc_hosts: true\n");
    golden("runcmd", userData);
  });

  it("adds network-config only when given", async () => {
    const iso = path.join(work, "net.iso");
    await writeCidataIso(iso, { instanceId: "i", hostname: "h", sshAuthorizedKeys: [KEY], userData: "", networkConfig: "version: 2\n" });
    const { stdout } = await execa("isoinfo", ["-J", "-l", "-i", iso]);
    expect(stdout).toContain("network-config");
    golden("none", await readIsoFile(iso, "user-data"));
  });

  it("quotes values so hostile text stays one YAML scalar", () => {
    const text = renderMetaData({ instanceId: 'a"b\nc', hostname: "h: x", sshAuthorizedKeys: [], userData: "" });
    expect(text).toBe('instance-id: "a\\"b\\nc"\nlocal-hostname: "h: x"\n');
  });
});

describe("user-data merged with Hangar's account", () => {
  it("without user-data: the image's default user and hangar with the key, passwordless sudo, no password", () => {
    const users = usersOf(renderUserData(null, [KEY]));
    expect(names(users)).toEqual(["default", "hangar"]);
    expect(hangarOf(users)).toMatchObject({ sudo: "ALL=(ALL) NOPASSWD:ALL", lock_passwd: true, ssh_authorized_keys: [KEY], shell: "/bin/sh" });
  });

  const cloudConfigs: [string, string, string[]][] = [
    ["no users: keeps the default user", "#cloud-config\nhostname: web\n", ["default", "hangar"]],
    [
      "a users: list stays as written, hangar appended",
      "#cloud-config\nusers:\n  - default\n  - name: alice\n    groups: [wheel]\n",
      ["default", "alice", "hangar"],
    ],
    ["a users: list without default stays without it", "#cloud-config\nusers:\n  - name: alice\n", ["alice", "hangar"]],
    ["users: as a comma-separated string", "#cloud-config\nusers: default, bob\n", ["default", "bob", "hangar"]],
    ["users: in the old map form", "#cloud-config\nusers:\n  carol:\n    shell: /bin/bash\n", ["carol", "hangar"]],
    ["comments only", "#cloud-config\n# nothing yet\n", ["default", "hangar"]],
  ];
  it.each(cloudConfigs)("#cloud-config, %s", (name, userData, expected) => {
    const rendered = renderUserData(userData, [KEY]);
    expect(rendered.startsWith("#cloud-config\n")).toBe(true);
    expect(names(usersOf(rendered))).toEqual(expected);
    golden(`cloud-config-${name.replace(/[^a-z]+/g, "-").replace(/-$/, "")}`, rendered);
  });

  it("keeps the rest of a #cloud-config, comments included", () => {
    const rendered = renderUserData("#cloud-config\n# mine\nhostname: web # the name\nruncmd:\n  - [sh, -c, 'echo hi']\n", [KEY]);
    expect(rendered).toContain("# mine\nhostname: web # the name\n");
    expect(parse(rendered)).toMatchObject({ hostname: "web", runcmd: [["sh", "-c", "echo hi"]] });
  });

  it("a user's own hangar entry keeps its settings and key and gains Hangar's key and sudo", () => {
    const users = usersOf(
      renderUserData("#cloud-config\nusers:\n  - name: hangar\n    shell: /bin/bash\n    sudo: false\n    ssh_authorized_keys: [ssh-ed25519 MINE me]\n", [KEY]),
    );
    expect(names(users)).toEqual(["hangar"]);
    expect(hangarOf(users)).toMatchObject({ shell: "/bin/bash", sudo: "ALL=(ALL) NOPASSWD:ALL", ssh_authorized_keys: ["ssh-ed25519 MINE me", KEY] });
  });

  const others: [string, string, string][] = [
    ["a shell script", "#!/bin/sh\necho hi > /tmp/hi\n", "text/x-shellscript"],
    ["an #include", "#include\nhttps://example.com/cloud-config\n", "text/x-include-url"],
    ["a cloud-config archive", "#cloud-config-archive\n- type: text/cloud-config\n  content: 'hostname: x'\n", "text/cloud-config-archive"],
    ["a boothook", "#cloud-boothook\n#!/bin/sh\necho early\n", "text/cloud-boothook"],
  ];
  it.each(others)("%s: a MIME multipart of it, untouched, and Hangar's cloud-config that appends", (name, userData, type) => {
    const rendered = renderUserData(userData, [KEY]);
    const boundary = /boundary="([^"]+)"/.exec(rendered)?.[1] ?? "";
    expect(boundary).not.toBe("");
    const parts = rendered.split(`--${boundary}`);
    expect(parts).toHaveLength(4);
    expect(parts[1]).toContain(`Content-Type: ${type}; charset="utf-8"\n`);
    expect(parts[1]?.endsWith(`\n\n${userData}`)).toBe(true);
    expect(parts[2]).toContain(`Merge-Type: ${HANGAR_MERGE_TYPE}\n`);
    expect(names(usersOf(parts[2]?.split("\n\n")[1] ?? ""))).toEqual(["default", "hangar"]);
    expect(parts[3]).toBe("--\n");
    golden(`multipart-${name.replace(/[^a-z]+/g, "-")}`, rendered);
  });

  it("a MIME multipart becomes one part of Hangar's, its own headers kept", () => {
    const mime =
      'Content-Type: multipart/mixed; boundary="XX"\nMIME-Version: 1.0\n\n--XX\nContent-Type: text/cloud-config\n\n#cloud-config\nusers: [default, dave]\n--XX\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho a\n--XX--\n';
    const rendered = renderUserData(mime, [KEY]);
    expect(rendered).toContain(`\n\n--${/boundary="([^"]+)"/.exec(rendered)?.[1]}\n${mime}--`);
    golden("multipart-nested", rendered);
  });

  it("refuses a #cloud-config that is not YAML, or not a mapping, with a sentence", () => {
    expect(() => renderUserData("#cloud-config\nruncmd: [\n", [KEY])).toThrow(UserDataError);
    expect(() => renderUserData("#cloud-config\nruncmd: [\n", [KEY])).toThrow(/not valid YAML \(line \d+\)\.$/);
    expect(() => renderUserData("#cloud-config\n- a\n", [KEY])).toThrow(/must be a YAML mapping/);
    expect(() => renderUserData("#cloud-config\nusers: 3\n", [KEY])).toThrow(/must be a list of users/);
  });

  it("refuses a YAML alias bomb with a sentence, as vm.create does and as a start of a VM stored before that check does", () => {
    // Each level is ten aliases of the one before: 10^7 x's once resolved.
    const levels = [..."bcdefg"].map((name, i) => `${name}: &${name} [${Array(10).fill(`*${"abcdef"[i]}`).join(",")}]`);
    const bomb = ["#cloud-config", "a: &a [x,x,x,x,x,x,x,x,x,x]", ...levels, "users: [*g]"].join("\n");
    const sentence = /^The user-data uses too many YAML aliases .*instead\.$/;
    expect(userDataProblem(bomb)).toMatch(sentence);
    expect(() => renderUserData(bomb, [KEY])).toThrow(UserDataError);
    expect(() => renderUserData(bomb, [KEY])).toThrow(sentence);
    // An alias before its anchor is refused too; a few aliases (merge keys) are fine.
    expect(userDataProblem("#cloud-config\nx: *nope\n")).toMatch(/^The user-data is #cloud-config but its YAML could not be read \(.*nope\)\.$/);
    expect(userDataProblem("#cloud-config\nbase: &b { shell: /bin/sh }\nusers: [{ <<: *b, name: dave }]\n")).toBeUndefined();
  });

  it("says what cloud-init could not read, and passes every other kind of user-data as it is", () => {
    const cases: [string, RegExp | undefined][] = [
      ["", undefined],
      ["#cloud-config\n", undefined],
      ["#cloud-config\nusers: [default]\nruncmd: [[sh, -c, echo hi]]\n", undefined],
      ["#cloud-config\nusers: default,dave\n", undefined],
      ["#cloud-config\nusers:\n  dave: { shell: /bin/bash }\n", undefined],
      ["#!/bin/sh\n  foo: [bar\n", undefined],
      ["#cloud-config\n  foo: [bar\n", /^The user-data is #cloud-config but not valid YAML \(line \d+\)\.$/],
      ["#cloud-config\nplain words\n", /must be a YAML mapping/],
      ["#cloud-config\nusers: true\n", /must be a list of users/],
    ];
    for (const [text, problem] of cases) {
      if (problem) expect(userDataProblem(text), text).toMatch(problem);
      else expect(userDataProblem(text), text).toBeUndefined();
    }
  });
});
