/**
 * The person's own ssh to a VM through Hangar (`hangar proxy` as ProxyCommand), and files
 * copied over it both ways as a tar stream (`hangar push`, `hangar pull`, as `incus file
 * push|pull` or `limactl copy`): tar is in every guest, busybox's included, where scp and
 * sftp-server are not. Nothing here reaches a VM port directly.
 */
import { mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import { CliError, EXIT } from "./api.ts";

export interface SshTarget {
  id: string;
  name: string;
  /** The image's login user, unless the person names another. */
  user: string;
}

export interface SshChoices {
  user?: string;
  identity?: string;
  /** More `-o` options, as ssh takes them. */
  option?: string[];
}

/** Single quotes for a word read by a POSIX shell (ssh's ProxyCommand, the guest's login shell). */
export const shellQuote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

/** ssh's arguments up to the remote command: through `launcher proxy`, as the login user. */
export function sshArgs(launcher: string, vm: SshTarget, choices: SshChoices): string[] {
  const proxy = [process.execPath, launcher, "proxy", vm.id].map(shellQuote).join(" ");
  return [
    "-o",
    `ProxyCommand=${proxy}`,
    // Host keys are remembered per VM id: names are reused, ids are not.
    "-o",
    `HostKeyAlias=hangar-${vm.id}`,
    "-o",
    "StrictHostKeyChecking=accept-new",
    // The bridge closes a terminal after 30 minutes without input; keepalives are input.
    "-o",
    "ServerAliveInterval=60",
    ...(choices.option ?? []).flatMap((o) => ["-o", o]),
    ...(choices.identity ? ["-i", choices.identity] : []),
    "-l",
    choices.user ?? vm.user,
    "--",
    vm.name,
  ];
}

/** `hangar ssh`'s options that take a value (the next word, or after "=" in the long form). */
const SSH_VALUE_OPTIONS = new Set(["-l", "--user", "-i", "--identity", "-o", "--option"]);

/**
 * `hangar ssh`'s words (those after "ssh") as ssh reads its own: options before and after the
 * VM, and from the first word after the VM that is not an option, the command, options and
 * all; so `hangar ssh web-1 ls -la` runs `ls -la` (commander would take -la as its options).
 * Marks where the command starts with "--", unless the person did.
 */
export function sshCommandWords(words: string[]): string[] {
  let vmSeen = false;
  for (let i = 0; i < words.length; i += 1) {
    const word = words[i] ?? "";
    if (word === "--") return words;
    if (word.startsWith("-") && word !== "-") {
      if (SSH_VALUE_OPTIONS.has(word)) i += 1;
      continue;
    }
    if (!vmSeen) vmSeen = true;
    else return [...words.slice(0, i), "--", ...words.slice(i)];
  }
  return words;
}

/** `VM:path` split; USAGE when there is no VM part or no path. */
export function vmPath(text: string): { vm: string; path: string } {
  const at = text.indexOf(":");
  if (at <= 0 || at === text.length - 1) throw new CliError(`"${text}" names no VM path; write VM:/path, e.g. web-1:/srv.`, EXIT.USAGE);
  return { vm: text.slice(0, at), path: text.slice(at + 1) };
}

/** The folder a path is in and its own name, which tar takes as `./name` (a name may start with -). */
function splitPath(where: string, posix: boolean): { parent: string; name: string } {
  const paths = posix ? path.posix : path;
  const clean = paths.normalize(where).replace(/\/+$/, "");
  const name = paths.basename(clean);
  if (!name || name === "." || name === "..") throw new CliError(`"${where}" names no file or directory to copy; name one, e.g. ./site.`, EXIT.USAGE);
  return { parent: paths.dirname(clean), name: `./${name}` };
}

/** What a failed tar or ssh said is on stderr already: the exit says which side failed. */
async function piped(run: () => Promise<unknown>, what: string): Promise<void> {
  try {
    await run();
  } catch {
    throw new CliError(`Copying ${what} failed (ssh's or tar's message above says why).`, EXIT.FAILED);
  }
}

/** Copies local files and directories into directory `dir` of the VM (made if missing). */
export async function push(ssh: string[], sources: string[], dir: string, asRoot: boolean): Promise<void> {
  const sudo = asRoot ? "sudo " : "";
  const target = shellQuote(dir);
  const remote = `${sudo}mkdir -p -- ${target} && ${sudo}tar -x -o -f - -C ${target}`;
  for (const source of sources) {
    await stat(source).catch(() => {
      throw new CliError(`There is no ${source} here to copy.`, EXIT.NOT_FOUND);
    });
    const { parent, name } = splitPath(source, false);
    await piped(
      () => execa("tar", ["-c", "-f", "-", "-C", parent, name], { stderr: "inherit" }).pipe("ssh", [...ssh, remote], { stdout: "ignore", stderr: "inherit" }),
      source,
    );
  }
}

/** Copies files and directories of the VM into local directory `dir` (made if missing). */
export async function pull(ssh: string[], sources: string[], dir: string, asRoot: boolean): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const source of sources) {
    const { parent, name } = splitPath(source, true);
    const remote = `${asRoot ? "sudo " : ""}tar -c -f - -C ${shellQuote(parent)} ${shellQuote(name)}`;
    await piped(() => execa("ssh", [...ssh, remote], { stderr: "inherit" }).pipe("tar", ["-x", "-f", "-", "-C", dir], { stderr: "inherit" }), source);
  }
}
