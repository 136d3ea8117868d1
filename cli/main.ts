/**
 * `hangar`: Hangar from a teammate's terminal. It lives at the top level, not under server/,
 * because it is a client: it talks to a Hangar server over HTTP and WebSockets with an API
 * token, like any other service, and loads no server code (only the router's type).
 *
 * Results go to stdout (`--json` for scripts), progress and messages to stderr; exit codes
 * are in api.ts (EXIT) and the README.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { execa } from "execa";
import { createTRPCClient, createWSClient, wsLink } from "@trpc/client";
import superjson from "superjson";
import WebSocket from "ws";
import type { AppRouter } from "../server/api/root.ts";
import packageJson from "../package.json" with { type: "json" };
import {
  CliError,
  EXIT,
  asCliError,
  connect,
  localTime,
  mib,
  output,
  readLocalFile,
  resolveHost,
  resolveImage,
  resolvePool,
  resolveUser,
  resolveVm,
  table,
  toJson,
  usageText,
  type Relocation,
} from "./api.ts";
import { BUILTIN_IMAGE, FIRMWARES, STAGING_STATES, VM_STATES, splitTags, type Firmware } from "../lib/vocabulary.ts";
import { completionScript } from "./completion.ts";
import { eventTable, newestOldestFirst, seenIds } from "./events.ts";
import { login, readStdin } from "./login.ts";
import { progressBar } from "./progress.ts";
import { pull, push, sshArgs, sshCommandWords, vmPath, type SshChoices } from "./ssh.ts";
import { openTerminal, pipeProxy, runConsole } from "./terminal.ts";

/** bin/hangar.mjs, which ssh runs as the ProxyCommand: beside cli/ for the source, two up from dist/cli/ for the bundle. */
const here = path.dirname(fileURLToPath(import.meta.url));
const LAUNCHER =
  [path.resolve(here, "..", "bin", "hangar.mjs"), path.resolve(here, "..", "..", "bin", "hangar.mjs")].find((file) => existsSync(file)) ?? "hangar";

const program = new Command("hangar")
  .description("Hangar's command line: VMs, consoles, ssh, pools and images on a Hangar server.")
  .option("--json", "print results as JSON (for scripts)")
  .version(packageJson.version, "-V, --version", "print the CLI's version")
  .showHelpAfterError()
  .exitOverride();

const json = (command: Command) => Boolean(command.optsWithGlobals().json);

// A reader that stopped early (`hangar events -f | head -3`) has what it wanted: end quietly
// rather than with EPIPE's stack trace.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
  process.exit(EXIT.OK);
});

/** Runs a command's body; a failure prints its sentence and sets its exit code. */
function run<A extends unknown[]>(body: (...args: A) => Promise<number | void>) {
  return async (...args: A) => {
    try {
      const code = await body(...args);
      if (typeof code === "number") process.exitCode = code;
    } catch (error) {
      const failure = asCliError(error);
      process.stderr.write(`hangar: ${failure.message}\n`);
      process.exitCode = failure.exitCode;
    }
  };
}

const int = (name: string) => (value: string) => {
  const number = Number(value);
  if (!Number.isInteger(number)) throw new CliError(`${name} must be a whole number.`, EXIT.USAGE);
  return number;
};

/** A number of things: a whole number, 0 or more. */
const count = (name: string) => (value: string) => {
  const number = int(name)(value);
  if (number < 0) throw new CliError(`${name} must be 0 or more.`, EXIT.USAGE);
  return number;
};

/** A VM state as the API names it, typed in any case (`running` is Running). */
const vmState = (value: string) => {
  const state = VM_STATES.find((s) => s.toLowerCase() === value.toLowerCase());
  if (!state) throw new InvalidArgumentError(`Allowed choices are ${VM_STATES.join(", ")}.`);
  return state;
};

interface VmLine {
  name: string;
  state: string;
  readyState?: string | null;
  cpus: number;
  memoryMiB: number;
  image: { name: string };
  owner?: { email: string } | null;
  tags: string[];
  host: { name: string } | null;
  hostOffline: boolean;
}
const VM_HEADER = ["NAME", "STATE", "READY", "CPUS", "MEMORY", "IMAGE", "OWNER", "TAGS"];
/** A VM as one line of a table. */
const vmRow = (vm: VmLine) => [
  vm.name,
  vm.state,
  vm.readyState ?? "",
  String(vm.cpus),
  `${vm.memoryMiB} MiB`,
  vm.image.name,
  vm.owner?.email ?? "",
  vm.tags.join(","),
];
/** A VM's host as a table shows it: its name, and whether it is offline. */
const hostCell = (vm: VmLine) => (vm.host ? `${vm.host.name}${vm.hostOffline ? " (offline)" : ""}` : "");
/**
 * VMs as a table. The HOST column shows only when they are on more than one host (or one
 * is offline), as `incus list` shows LOCATION only in a cluster: on one host it would
 * repeat one name.
 */
const vmTable = (vms: VmLine[]) => {
  const withHost = new Set(vms.map((vm) => vm.host?.name ?? "")).size > 1 || vms.some((vm) => vm.hostOffline);
  if (!withHost) return table(VM_HEADER, vms.map(vmRow));
  return table(
    [...VM_HEADER, "HOST"],
    vms.map((vm) => [...vmRow(vm), hostCell(vm)]),
  );
};
/** A command's examples, after its options in --help. */
const examples = (...lines: string[]) => ["", "Examples:", ...lines.map((line) => `  ${line}`)].join("\n");
const vmCount = (n: number) => `${n} VM${n === 1 ? "" : "s"}`;
/** A repeatable option's values, in order. */
const collect = (value: string, previous: string[] = []) => [...previous, value];

program
  .command("login")
  .description("save Hangar's address and an API token (~/.config/hangar/config.json, mode 0600)")
  .addHelpText(
    "after",
    examples(
      "hangar login https://hangar.example                 # paste a token, or Enter for email + password",
      'echo "$HANGAR_TOKEN" | hangar login https://hangar.example --token-stdin',
      "hangar login https://hangar.example --email me@example.com --password-stdin < pw.txt",
    ),
  )
  .argument("<url>", "Hangar's address, e.g. https://hangar.example")
  .option("--token-stdin", "read the API token from stdin")
  .option("--email <email>", "sign in with this email and a password, and make a token")
  .option("--password-stdin", "with --email: read the password from stdin")
  .action(
    run(async (url: string, options: { tokenStdin?: boolean; email?: string; passwordStdin?: boolean }, command: Command) => {
      const result = await login(url, options);
      output(json(command), result, (r) => `Logged in to ${r.url} as ${r.email} (${r.role}); saved in ${r.config}.`);
    }),
  );

program
  .command("ls")
  .description("list VMs")
  .option("--names", "only the names, one a line")
  .option("--search <text>", "only VMs whose name contains it")
  .option("--state <state>", `only VMs in this state: ${VM_STATES.join(", ")}`, vmState)
  .option("--mine", "only your own VMs")
  .option("--tag <tag>", "only VMs with this tag")
  .option("--host <host>", "only VMs on this host (`hangar host ls`)")
  .action(
    run(
      async (
        options: { names?: boolean; search?: string; state?: (typeof VM_STATES)[number]; mine?: boolean; tag?: string; host?: string },
        command: Command,
      ) => {
        const { api } = await connect();
        const filtered = options.search !== undefined || options.state !== undefined || options.mine || options.tag !== undefined || options.host !== undefined;
        const hostId = options.host === undefined ? undefined : await resolveHost(api, options.host);
        // Filters go to the server, a page at a time; without any, the whole list in one call.
        const vms = filtered ? [] : (await api.vm.list.query()).items;
        for (let cursor: string | undefined, more = filtered; more;) {
          const page = await api.vm.list.query({
            search: options.search,
            state: options.state,
            owner: options.mine ? "mine" : undefined,
            tag: options.tag,
            hostId,
            sort: "name",
            limit: 1000,
            cursor,
          });
          vms.push(...page.items);
          cursor = page.nextCursor ?? undefined;
          more = cursor !== undefined;
        }
        const names = vms.map((vm) => vm.name);
        // One a line for shells (nothing at all for none), an array with --json.
        if (options.names) return void process.stdout.write(json(command) ? `${toJson(names)}\n` : names.map((n) => `${n}\n`).join(""));
        output(json(command), vms, vmTable);
      },
    ),
  );

program
  .command("get")
  .description("show one VM")
  .argument("<vm>", "name")
  .action(
    run(async (name: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      const vm = await api.vm.get.query({ id: await resolveVm(api, name) });
      // What its guest agent reports, while it runs (a bridged VM's LAN address); its host
      // asks the agent, so a VM whose host is offline shows what the database has.
      const running = vm.state === "Running" && !vm.hostOffline;
      const [reported, metrics] = running
        ? await Promise.all([api.vm.addresses.query({ id: vm.id }), api.metrics.vm.query({ id: vm.id, range: "1h" })])
        : [undefined, undefined];
      const addresses = reported?.interfaces ?? null;
      // Its host's newest sample (taken every HANGAR_SAMPLE_INTERVAL_SEC while it runs).
      const usage = metrics?.points.at(-1) ?? null;
      const usageShown = usage ? usageText(usage) : "";
      output(json(command), { ...vm, addresses, usage }, (v) =>
        [
          table(VM_HEADER, [vmRow(v)]),
          `id: ${v.id}`,
          v.host ? `host: ${hostCell(v)}` : "",
          usageShown ? `usage: ${usageShown}` : "",
          v.description ? `description: ${v.description}` : "",
          v.readyDetail ? `ready: ${v.readyDetail}` : "",
          // Why its last action failed, or why it stopped on its own (the VM page shows it too).
          v.error ? `error: ${v.error}` : "",
          v.addresses
            ? `addresses: ${v.addresses
                .filter((nic) => nic.addresses.length > 0)
                .map((nic) => `${nic.name} ${nic.addresses.map((ip) => `${ip.address}/${ip.prefix}`).join(" ")}`)
                .join("; ")}`
            : "",
          v.ports.length ? `forwards: ${v.ports.map((p) => `${p.boundPort ?? p.hostPort}->${p.guestPort}`).join(", ")}` : "",
          v.autostart
            ? `autostart: on${v.autostartOrder !== null ? `, order ${v.autostartOrder}` : ""}${v.autostartDelaySec > 0 ? `, then ${v.autostartDelaySec} s` : ""}`
            : "",
          v.protection ? "protection: on" : "",
          `ssh: hangar ssh ${v.name}`,
        ]
          .filter(Boolean)
          .join("\n"),
      );
    }),
  );

program
  .command("create")
  .description("create a VM (Stopped unless --start)")
  .addHelpText("after", examples("hangar create web-1 --start", "hangar create web-1 --image debian-12 --cpus 2 --memory 1024 --tag prod --start"))
  .argument("<name>", "the VM's name (a DNS label)")
  .option("--image <image>", `image name or id (default: ${BUILTIN_IMAGE}, else the first ready image)`)
  .option("--cpus <n>", "vCPUs", int("--cpus"), 1)
  .option("--memory <MiB>", "memory in MiB", int("--memory"), 256)
  .option("--disk <GiB>", "disk size in GiB", int("--disk"))
  .option("--user-data <file>", "cloud-init user-data file")
  .addOption(new Option("--network <mode>", "network").choices(["nat", "isolated", "bridge"]))
  .option("--host <host>", "the host to run it on (`hangar host ls`; default: a live host with room)")
  .option("--autostart", "start it whenever its host boots")
  .option("--description <text>", "what the VM is for")
  .option("--tag <tag>", "a tag (again for more)", collect)
  .option("--start", "start it once created")
  .action(
    run(
      async (
        name: string,
        options: {
          image?: string;
          cpus: number;
          memory: number;
          disk?: number;
          userData?: string;
          network?: "nat" | "isolated" | "bridge";
          host?: string;
          autostart?: boolean;
          description?: string;
          tag?: string[];
          start?: boolean;
        },
        command: Command,
      ) => {
        const { api } = await connect();
        const userData = options.userData ? await readLocalFile(options.userData, "--user-data") : undefined;
        let vm = await api.vm.create.mutate({
          name,
          imageId: await resolveImage(api, options.image),
          cpus: options.cpus,
          memoryMiB: options.memory,
          diskGiB: options.disk,
          userData,
          network: options.network,
          hostId: options.host === undefined ? undefined : await resolveHost(api, options.host),
          autostart: options.autostart,
          description: options.description,
          tags: options.tag,
        });
        if (options.start) vm = await api.vm.start.mutate({ id: vm.id });
        output(json(command), vm, (v) => `${v.name} ${v.state}`);
      },
    ),
  );

for (const [verb, describe] of [
  ["start", "start or resume VMs"],
  ["stop", "stop VMs (power button, then kill after --timeout)"],
  ["restart", "stop running VMs and start them again (a fresh boot)"],
  ["suspend", "save VMs' state to disk and end them; start or resume resumes them"],
  ["resume", "resume Suspended VMs where they were (as start does for them)"],
  ["delete", "delete VMs and their disks"],
] as const) {
  const cmd = program.command(verb).description(describe).argument("<vm...>", "names");
  if (verb === "stop" || verb === "restart") cmd.option("--timeout <sec>", "seconds before a VM is killed", int("--timeout"), 30);
  cmd.action(
    run(async (names: string[], options: { timeout?: number }, command: Command) => {
      const { api } = await connect();
      const act = async (name: string) => {
        const id = await resolveVm(api, name);
        const timeoutSec = options.timeout ?? 30;
        switch (verb) {
          case "start":
            return api.vm.start.mutate({ id });
          case "stop":
            return api.vm.stop.mutate({ id, timeoutSec });
          case "restart":
            return api.vm.restart.mutate({ id, timeoutSec });
          case "suspend":
            return api.vm.suspend.mutate({ id });
          case "resume": {
            // start would boot a VM that is not Suspended afresh: not what "resume" asks for.
            const { state } = await api.vm.get.query({ id });
            if (state !== "Suspended") throw new CliError(`VM "${name}" is ${state}, not Suspended; nothing to resume.`, EXIT.CONFLICT);
            return api.vm.start.mutate({ id });
          }
          case "delete":
            return { ...(await api.vm.delete.mutate({ id })), name, state: "Deleted" };
        }
      };
      // One after another, as `incus stop a b`: each VM that fails says why, the rest go on.
      const results: { name: string; state: string }[] = [];
      let failed: CliError | undefined;
      for (const name of names) {
        try {
          const result = await act(name);
          results.push(result);
          if (!json(command)) output(false, result, (r) => `${r.name} ${r.state}`);
        } catch (error) {
          failed = asCliError(error);
          process.stderr.write(`hangar: ${name}: ${failed.message}\n`);
        }
      }
      // One VM: its object, as before; several: an array of those that went through.
      if (json(command) && names.length > 1) output(true, results, () => "");
      else if (json(command) && results[0]) output(true, results[0], () => "");
      return failed?.exitCode;
    }),
  );
}

program
  .command("resize")
  .description("change a Stopped VM's CPUs or memory (from its next start), or grow its disk (Stopped or Running; disks only grow)")
  .argument("<vm>", "name")
  .option("--cpus <n>", "vCPUs", int("--cpus"))
  .option("--memory <MiB>", "memory in MiB", int("--memory"))
  .option("--disk <GiB>", "disk size in GiB", int("--disk"))
  .action(
    run(async (name: string, options: { cpus?: number; memory?: number; disk?: number }, command: Command) => {
      if (options.cpus === undefined && options.memory === undefined && options.disk === undefined) {
        throw new CliError("Give --cpus, --memory, --disk or several.", EXIT.USAGE);
      }
      const { api } = await connect();
      const id = await resolveVm(api, name);
      if (options.cpus !== undefined || options.memory !== undefined) await api.vm.resize.mutate({ id, cpus: options.cpus, memoryMiB: options.memory });
      if (options.disk !== undefined) await api.vm.resizeDisk.mutate({ id, diskGiB: options.disk });
      const vm = await api.vm.get.query({ id });
      output(json(command), vm, (v) => `${v.name} ${v.cpus} CPUs, ${v.memoryMiB} MiB${v.diskGiB ? `, ${v.diskGiB} GiB disk` : ""}`);
    }),
  );

program
  .command("rename")
  .description("give a VM a new name (its guest's hostname follows at its next boot)")
  .argument("<vm>", "name")
  .argument("<name>", "the new name (a DNS label)")
  .action(
    run(async (name: string, next: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      const vm = await api.vm.rename.mutate({ id: await resolveVm(api, name), name: next });
      output(json(command), vm, (v) => `${v.name} ${v.state}`);
    }),
  );

program
  .command("describe")
  .description("say what a VM is for (an empty text removes it)")
  .argument("<vm>", "name")
  .argument("<text>", "the description")
  .action(
    run(async (name: string, text: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      const result = await api.vm.describe.mutate({ id: await resolveVm(api, name), description: text });
      output(json(command), { name, ...result }, (r) => `${r.name}: ${r.description || "(no description)"}`);
    }),
  );

const tag = program.command("tag").description("tags, to group and find VMs by (hangar ls --tag)");
tag
  .command("ls")
  .description("every tag in use, with how many VMs have it")
  .action(
    run(async (_options: unknown, command: Command) => {
      const { api } = await connect();
      const tags = await api.vm.listTags.query();
      output(json(command), tags, (list) =>
        table(
          ["TAG", "VMS"],
          list.map((t) => [t.tag, String(t.vms)]),
        ),
      );
    }),
  );
for (const [verb, summary] of [
  ["add", "add tags to a VM"],
  ["rm", "take tags off a VM"],
  ["set", "give a VM exactly these tags (none: no tags)"],
] as const) {
  tag
    .command(verb)
    .description(summary)
    .argument("<vm>", "name")
    .argument(verb === "set" ? "[tags...]" : "<tags...>", "tags, separated by spaces")
    .action(
      run(async (name: string, given: string[], _options: unknown, command: Command) => {
        const { api } = await connect();
        const id = await resolveVm(api, name);
        const words = given.flatMap(splitTags);
        const current = verb === "set" ? [] : (await api.vm.get.query({ id })).tags;
        const lowered = new Set(words.map((word) => word.toLowerCase()));
        const tags = verb === "rm" ? current.filter((t) => !lowered.has(t)) : [...current, ...words];
        const result = await api.vm.setTags.mutate({ id, tags });
        output(json(command), { name, ...result }, (r) => `${r.name}: ${r.tags.join(" ") || "(no tags)"}`);
      }),
    );
}

program
  .command("protect")
  .description("whether a VM is protected from deletion")
  .argument("<vm>", "name")
  .addArgument(new Argument("<on|off>").choices(["on", "off"]))
  .action(
    run(async (name: string, value: "on" | "off", _options: unknown, command: Command) => {
      const { api } = await connect();
      const result = await api.vm.setProtection.mutate({ id: await resolveVm(api, name), protection: value === "on" });
      output(json(command), { name, ...result }, (r) => `${r.name} protection ${r.protection ? "on" : "off"}`);
    }),
  );

program
  .command("owner")
  .description("give a VM to another user, or to nobody (admins)")
  .addHelpText("after", examples("hangar owner web-1 bob@example.com", "hangar owner web-1 --none    # only admins control it then"))
  .argument("<vm>", "name")
  .argument("[email]", "the new owner's email")
  .option("--none", "no owner")
  .action(
    run(async (name: string, email: string | undefined, options: { none?: boolean }, command: Command) => {
      if (Boolean(email) === Boolean(options.none)) throw new CliError("Name the new owner's email, or --none for no owner.", EXIT.USAGE);
      const { api } = await connect();
      const id = await resolveVm(api, name);
      const owner = email ? (await api.user.list.query()).find((user) => user.email === email.toLowerCase()) : undefined;
      if (email && !owner) throw new CliError(`No user with email ${email}; the Users page lists them.`, EXIT.NOT_FOUND);
      const result = await api.vm.setOwner.mutate({ id, ownerId: owner?.id ?? null });
      output(json(command), { name, ...result, owner: owner?.email ?? null }, (r) => `${r.name} owner ${r.owner ?? "none"}`);
    }),
  );

program
  .command("autostart")
  .description("whether a VM starts when its host boots")
  .argument("<vm>", "name")
  .addArgument(new Argument("<on|off>").choices(["on", "off"]))
  .option("--order <n>", "its place in the start order, lower first", int("--order"))
  .option("--no-order", "no place: after the VMs that have one")
  .option("--delay <sec>", "seconds the next VM waits after this one starts", int("--delay"))
  .action(
    run(async (name: string, value: "on" | "off", options: { order?: number | false; delay?: number }, command: Command) => {
      const { api } = await connect();
      const result = await api.vm.setAutostart.mutate({
        id: await resolveVm(api, name),
        autostart: value === "on",
        order: options.order === false ? null : options.order,
        delaySec: options.delay,
      });
      output(json(command), { name, ...result }, (r) => {
        const place = [r.order !== null ? `order ${r.order}` : "", r.delaySec > 0 ? `then ${r.delaySec} s` : ""].filter(Boolean).join(", ");
        return `${r.name} autostart ${r.autostart ? "on" : "off"}${place ? ` (${place})` : ""}`;
      });
    }),
  );

program
  .command("clone")
  .description("a new VM from a Stopped one")
  .argument("<vm>", "the source VM")
  .argument("<name>", "the new VM's name")
  .action(
    run(async (source: string, name: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      const vm = await api.vm.clone.mutate({ id: await resolveVm(api, source), name });
      output(json(command), vm, (v) => `${v.name} ${v.state}`);
    }),
  );

program
  .command("move")
  .description("move a Stopped or Suspended VM to another host, with its disk, snapshots, SSH key and saved state")
  .addHelpText("after", examples("hangar move web-1 beta"))
  .argument("<vm>", "name")
  .argument("<host>", "the host to move it to (`hangar host ls`)")
  .action(
    run(async (name: string, host: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      const vm = await api.vm.move.mutate({ id: await resolveVm(api, name), hostId: await resolveHost(api, host) });
      output(json(command), vm, (v) => `${v.name} ${v.state} on ${v.host?.name ?? host}`);
    }),
  );

program
  .command("exec")
  .description("run a command in a VM (argv, no shell) and exit with its status")
  // `hangar exec web-1 uname -a` reads -a as exec's own option: say where the command goes.
  .showHelpAfterError("(The VM's command goes after --, e.g. hangar exec web-1 -- uname -a.)")
  .addHelpText("after", examples("hangar exec web-1 -- uname -a", "hangar exec web-1 --root -- sh -c 'apt-get update && apt-get -y upgrade'"))
  .argument("<vm>", "name")
  .argument("<command...>", "the program and its arguments (after --)")
  .option("--root", "run it as root (sudo)")
  .option("--timeout <sec>", "end it after this long", int("--timeout"), 60)
  .action(
    run(async (name: string, argv: string[], options: { root?: boolean; timeout: number }, command: Command) => {
      const { api } = await connect();
      const result = await api.vm.exec.mutate({ id: await resolveVm(api, name), command: argv, asRoot: options.root, timeoutSec: options.timeout });
      if (json(command)) output(true, result, () => "");
      else {
        process.stdout.write(result.stdout);
        process.stderr.write(result.stderr);
      }
      return result.exitCode ?? EXIT.FAILED;
    }),
  );

program
  .command("cp")
  .description("copy a file or directory from the server's sync root into a VM (rsync); from your own machine: hangar push")
  .addHelpText("after", examples("hangar cp releases/app-1.2 web-1:/srv/app   # releases/ is under HANGAR_SYNC_ROOT on the server"))
  .argument("<from>", "a path under the server's sync root (HANGAR_SYNC_ROOT)")
  .argument("<vm:path>", "the VM and the absolute path in it, e.g. web-1:/srv/site")
  .option("--root", "write as root")
  .option("--chown <owner>", "owner:group of what is written")
  .option("--exclude <pattern>", "an rsync pattern to leave out (again for more)", collect)
  .action(
    run(async (from: string, target: string, options: { root?: boolean; chown?: string; exclude?: string[] }, command: Command) => {
      // `cp VM:PATH DIR`, as limactl copy takes it, is a pull: say so rather than "names no VM path".
      if (/^[a-z0-9-]+:/.test(from) && !target.includes(":"))
        throw new CliError(`cp copies from the server's sync root into a VM; to copy out of a VM to this machine: hangar pull ${from} ${target}`, EXIT.USAGE);
      const to = vmPath(target);
      const { api } = await connect();
      const id = await resolveVm(api, to.vm);
      const result = await api.vm.sync
        .mutate({ id, from, to: to.path, asRoot: options.root, chown: options.chown, excludes: options.exclude })
        .catch((error: unknown) => {
          // Most who try cp mean files on their own machine, which the server cannot see.
          const failure = asCliError(error);
          throw new CliError(
            `${failure.message} (cp copies from the server's sync root; from this machine: hangar push LOCAL… ${to.vm}:DIR)`,
            failure.exitCode,
          );
        });
      output(json(command), result, () => `Copied ${from} to ${target}.`);
    }),
  );

program
  .command("wait")
  .description("wait until a VM is ready (cloud-init finished) or in a state")
  .addHelpText("after", examples("hangar wait web-1                # cloud-init finished", "hangar wait web-1 Stopped --timeout 300"))
  .argument("<vm>", "name")
  .argument("[what]", 'ready, or a state such as "Running" or "Stopped" (as --for)')
  .option("--for <what>", 'ready, or a state such as "Running" or "Stopped"', "ready")
  .option("--timeout <sec>", "give up after this long (exit 7)", int("--timeout"), 120)
  .action(
    run(async (name: string, what: string | undefined, options: { for: string; timeout: number }, command: Command) => {
      const wanted = what ?? options.for;
      const target = wanted.toLowerCase() === "ready" ? "ready" : VM_STATES.find((s) => s.toLowerCase() === wanted.toLowerCase());
      if (!target) throw new CliError(`Wait for "ready" or a VM state (${VM_STATES.join(", ")}), not "${wanted}".`, EXIT.USAGE);
      const { api } = await connect();
      const id = await resolveVm(api, name);
      const bar = progressBar(`waiting for ${target}`, options.timeout, !json(command));
      const started = Date.now();
      const tick = setInterval(() => bar.update(Math.min(Math.round((Date.now() - started) / 1000), options.timeout)), 500);
      try {
        const vm = await api.vm.wait.query({ id, for: target, timeoutSec: options.timeout });
        bar.stop();
        output(json(command), vm, (v) => (v ? `${v.name} ${v.state}${v.readyState ? ` (${v.readyState})` : ""}` : `${name} deleted`));
      } finally {
        clearInterval(tick);
        bar.stop();
      }
    }),
  );

program
  .command("console")
  .description("the VM's serial console in this terminal (~. to leave)")
  .addHelpText(
    "after",
    examples("hangar console web-1    # Enter for a login prompt; ~. at the start of a line leaves", "hangar console web-1 --log | grep cloud-init"),
  )
  .argument("<vm>", "name")
  .option("--log", "print the end of what the console printed (its last 16 KiB), in any state, and exit")
  .action(
    run(async (name: string, options: { log?: boolean }) => {
      const { config, api } = await connect();
      const vmId = await resolveVm(api, name);
      if (options.log) {
        process.stdout.write((await api.vm.serialTail.query({ id: vmId })).text);
        return;
      }
      return runConsole(await openTerminal(config, api, vmId, "console"));
    }),
  );

program
  .command("proxy")
  .description("pipe stdin/stdout to the VM's SSH port (ssh -o ProxyCommand='hangar proxy %h')")
  .argument("<vm>", "name (a trailing .hangar is dropped, for a `Host *.hangar` block in ~/.ssh/config)")
  .action(
    run(async (name: string) => {
      const { config, api } = await connect();
      const vmId = await resolveVm(api, name.replace(/\.hangar$/, ""));
      return pipeProxy(await openTerminal(config, api, vmId, "tunnel"), process.stdin, process.stdout);
    }),
  );

/** ssh's choices, shared by ssh, push and pull. */
const withSshOptions = (command: Command) =>
  command
    .option("-l, --user <user>", "log in as this user (default: the image's login user)")
    .option("-i, --identity <file>", "the private key to use")
    // Repeated, as ssh takes it: a variadic `-o` would also take the VM's name that follows.
    .option("-o, --option <option>", "an ssh -o option (again for more), e.g. -o ConnectTimeout=5", collect);

/** ssh's arguments to reach VM `name`, as the person chose. */
async function sshTo(name: string, choices: SshChoices) {
  const { api } = await connect();
  const vm = await api.vm.get.query({ id: await resolveVm(api, name) });
  // Said here, once: through ssh it comes back from `hangar proxy` amid ssh's own "kex_exchange_identification" lines.
  if (vm.state !== "Running") throw new CliError(`VM "${vm.name}" is ${vm.state}; start it first (hangar start ${vm.name}).`, EXIT.CONFLICT);
  return sshArgs(LAUNCHER, { id: vm.id, name: vm.name, user: vm.image.loginUser }, choices);
}

withSshOptions(
  program
    .command("ssh")
    .description("your own ssh to the VM through Hangar (as the image's login user)")
    .showHelpAfterError("(The VM's command goes after --, e.g. hangar ssh web-1 -- uname -a.)")
    .addHelpText(
      "after",
      examples(
        "hangar ssh web-1",
        "hangar ssh web-1 uname -a                  # as ssh: the command follows the VM",
        "hangar ssh -i ~/.ssh/work_ed25519 -l root web-1",
        "ssh -o ProxyCommand='hangar proxy %h' hangar@web-1   # plain ssh, scp, rsync",
      ),
    )
    .argument("<vm>", "name")
    .argument("[command...]", "a command to run instead of a login shell (its options are its own, as with ssh)"),
).action(
  run(async (name: string, argv: string[], options: SshChoices) => {
    const result = await execa("ssh", [...(await sshTo(name, options)), ...argv], { stdio: "inherit", reject: false });
    // 255 is ssh's own failure (the remote command's status is passed on as it is). Likely
    // causes: no keys on the account (and no -i), or a VM made before the person's key was added.
    if (result.exitCode === 255) {
      const { api } = await connect();
      const hasKeys = (await api.account.sshKeys.query()).length > 0;
      if (!hasKeys && !options.identity)
        process.stderr.write(
          "hangar: your account has no SSH keys, so the VM has none of yours: add one (`hangar key add ~/.ssh/id_ed25519.pub`); VMs you create or acquire from then on get it.\n",
        );
      if (hasKeys) process.stderr.write(`hangar: if ${name} was made before you added your key, \`hangar key install ${name}\` gives it your keys.\n`);
    }
    return result.exitCode ?? EXIT.FAILED;
  }),
);

withSshOptions(
  program
    .command("push")
    .description("copy local files or directories into a VM's directory, over your own ssh through Hangar")
    .addHelpText("after", examples("hangar push ./site web-1:/srv          # makes /srv/site", "hangar push --root app.conf web-1:/etc/app"))
    .argument("<paths...>", "local files or directories, then VM:DIR (made if missing)")
    .option("--root", "write as root (sudo in the guest)"),
).action(
  run(async (paths: string[], options: SshChoices & { root?: boolean }) => {
    const target = vmPath(paths[paths.length - 1] ?? "");
    const sources = paths.slice(0, -1);
    if (sources.length === 0) throw new CliError("Name what to copy, then VM:DIR, e.g. hangar push site web-1:/srv.", EXIT.USAGE);
    await push(await sshTo(target.vm, options), sources, target.path, Boolean(options.root));
  }),
);

withSshOptions(
  program
    .command("pull")
    .description("copy files or directories of a VM into a local directory, over your own ssh through Hangar")
    .addHelpText("after", examples("hangar pull web-1:/var/log/syslog logs/", "hangar pull --root web-1:/etc/ssh web-1:/etc/hosts backup/"))
    .argument("<paths...>", "VM:PATH (one VM), then a local directory (made if missing)")
    .option("--root", "read as root (sudo in the guest)"),
).action(
  run(async (paths: string[], options: SshChoices & { root?: boolean }) => {
    const sources = paths.slice(0, -1).map(vmPath);
    const [first] = sources;
    if (!first || paths.length < 2) throw new CliError("Name VM:PATH, then a local directory, e.g. hangar pull web-1:/var/log/syslog logs.", EXIT.USAGE);
    if (sources.some((source) => source.vm !== first.vm)) throw new CliError("Pull from one VM at a time.", EXIT.USAGE);
    await pull(
      await sshTo(first.vm, options),
      sources.map((source) => source.path),
      paths[paths.length - 1] ?? ".",
      Boolean(options.root),
    );
  }),
);

const host = program.command("host").description("the hosts of this Hangar: the machines VMs run on");
host
  .command("ls")
  .description("list hosts: online or not, and what their VMs take of them")
  .action(
    run(async (_options: unknown, command: Command) => {
      const { api } = await connect();
      const hosts = await api.host.list.query();
      output(json(command), hosts, (list) =>
        table(
          ["NAME", "STATUS", "ACCEL", "QEMU", "VCPUS", "MEMORY", "SSH ADDRESS", "BRIDGES", "LAST HEARTBEAT"],
          list.map((h) => [
            h.name,
            `${h.online ? "online" : "offline"}${h.maintenanceSince ? ", maintenance" : ""}`,
            h.accelerator,
            h.qemuVersion,
            `${h.allocatedCpus}/${h.cpus}`,
            // What running VMs take of what VMs may take (the host's memory x overcommit, less the reserve).
            `${h.allocatedMemoryMiB}/${h.memoryLimitMiB} MiB`,
            h.sshAddress,
            h.bridges.join(","),
            localTime(h.heartbeatAt, true),
          ]),
        ),
      );
    }),
  );

/** Where each VM went or why it stayed; exit 6 when any stayed or did not start again. */
function relocated(verb: string, result: Relocation, asJson: boolean): number {
  output(asJson, result, (r) =>
    [
      `${verb} host ${r.host}: ${r.moved.length} VM${r.moved.length === 1 ? "" : "s"} moved, ${r.stayed.length} stayed`,
      ...r.moved.map((vm) => `  ${vm.name} -> ${vm.to}${vm.restarted ? " (running again)" : ""}${vm.problem ? `: ${vm.problem}` : ""}`),
      ...r.stayed.map((vm) => `  ${vm.name} stayed: ${vm.reason}`),
    ].join("\n"),
  );
  return result.stayed.length > 0 || result.moved.some((vm) => vm.problem !== null) ? EXIT.CONFLICT : EXIT.OK;
}
host
  .command("evacuate")
  .description("keep new VMs off a host and move its VMs to the others (Running ones are stopped, moved and started there)")
  .argument("<host>", "the host (`hangar host ls`)")
  .addHelpText("after", examples("hangar host evacuate beta", "hangar host restore beta"))
  .action(
    run(async (name: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      return relocated("Evacuated", await api.host.evacuate.mutate({ id: await resolveHost(api, name) }), json(command));
    }),
  );
host
  .command("restore")
  .description("end a host's maintenance and bring back the VMs its evacuation moved away")
  .argument("<host>", "the host (`hangar host ls`)")
  .action(
    run(async (name: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      return relocated("Restored", await api.host.restore.mutate({ id: await resolveHost(api, name) }), json(command));
    }),
  );

host
  .command("rm")
  .description("remove a host that has gone for good: offline, with no VMs or pools left")
  .argument("<host>", "the host (`hangar host ls`)")
  .action(
    run(async (name: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      const removed = await api.host.remove.mutate({ id: await resolveHost(api, name) });
      output(json(command), removed, (r) => `${r.name} removed`);
    }),
  );

const pool = program.command("pool").description("warm pools");
pool
  .command("ls")
  .description("list pools")
  .action(
    run(async (_options: unknown, command: Command) => {
      const { api } = await connect();
      const [pools, hosts] = await Promise.all([api.pool.list.query(), api.host.list.query()]);
      const hostName = (id: string | null) => hosts.find((h) => h.id === id)?.name ?? "";
      // A HOST column, as in `hangar ls`, only when the pools are on more than one host.
      const withHost = new Set(pools.map((p) => p.hostId)).size > 1;
      output(json(command), pools, (list) =>
        table(
          ["NAME", "STAGING", "READY", "SIZE", "IMAGE", ...(withHost ? ["HOST"] : [])],
          list.map((p) => [p.name, p.staging, String(p.ready), String(p.size), p.image.name, ...(withHost ? [hostName(p.hostId)] : [])]),
        ),
      );
    }),
  );
pool
  .command("acquire")
  .description("take a ready VM from a pool (it gets your SSH keys)")
  .argument("<pool>", "pool name")
  .option("--timeout <sec>", "wait this long for a ready member", int("--timeout"), 60)
  .option("--public-key <file>", "also install this public key")
  .action(
    run(async (name: string, options: { timeout: number; publicKey?: string }, command: Command) => {
      const { api } = await connect();
      const publicKey = options.publicKey ? (await readLocalFile(options.publicKey, "--public-key")).trim() : undefined;
      const acquired = await api.pool.acquire.mutate({ poolId: await resolvePool(api, name), timeoutSec: options.timeout, publicKey });
      // The VM's own private key is the server's; the CLI reaches the VM with `hangar ssh`.
      const { privateKey: _privateKey, ...shown } = acquired;
      output(json(command), shown, (a) => `${a.name} (ssh: hangar ssh ${a.name})`);
    }),
  );
pool
  .command("release")
  .description("give an acquired VM back (it is stopped and deleted)")
  .argument("<vm>", "name")
  .action(
    run(async (name: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      const released = await api.pool.release.mutate({ vmId: await resolveVm(api, name) });
      output(json(command), released, () => `${name} released`);
    }),
  );

pool
  .command("create")
  .description("make a warm pool of VMs kept ready for pool acquire (admins)")
  .argument("<name>", "the pool's name (a DNS label; members are named after it)")
  .option("--image <image>", `image name or id (default: ${BUILTIN_IMAGE}, else the first ready image)`)
  .option("--size <n>", "VMs kept waiting", int("--size"), 2)
  .addOption(new Option("--staging <state>", "the state members wait in").choices(STAGING_STATES).default("Running"))
  .option("--cpus <n>", "vCPUs of each member", int("--cpus"), 1)
  .option("--memory <MiB>", "memory of each member in MiB", int("--memory"), 256)
  .option("--host <host>", "the host its members live on (`hangar host ls`; default: a live host with room)")
  .action(
    run(
      async (
        name: string,
        options: { image?: string; size: number; staging: (typeof STAGING_STATES)[number]; cpus: number; memory: number; host?: string },
        command: Command,
      ) => {
        const { api } = await connect();
        const made = await api.pool.create.mutate({
          name,
          imageId: await resolveImage(api, options.image),
          size: options.size,
          staging: options.staging,
          cpus: options.cpus,
          memoryMiB: options.memory,
          hostId: options.host === undefined ? undefined : await resolveHost(api, options.host),
        });
        output(json(command), made, (p) => `Pool ${p.name}: ${vmCount(p.size)}, waiting ${p.staging}`);
      },
    ),
  );
pool
  .command("resize")
  .description("keep another number of VMs waiting in a pool (admins)")
  .argument("<pool>", "pool name")
  .argument("<size>", "VMs kept waiting", int("<size>"))
  .action(
    run(async (name: string, size: number, _options: unknown, command: Command) => {
      const { api } = await connect();
      const resized = await api.pool.resize.mutate({ id: await resolvePool(api, name), size });
      output(json(command), resized, () => `Pool ${name}: ${vmCount(size)}`);
    }),
  );
pool
  .command("rm")
  .description("delete a pool and its waiting VMs; acquired ones stay (admins)")
  .argument("<pool>", "pool name")
  .action(
    run(async (name: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      const removed = await api.pool.delete.mutate({ id: await resolvePool(api, name) });
      output(json(command), removed, () => `Pool ${name} deleted`);
    }),
  );

const token = program.command("token").description("your API tokens, for services and scripts");
token
  .command("ls")
  .description("list your API tokens")
  .action(
    run(async (_options: unknown, command: Command) => {
      const { api } = await connect();
      const tokens = await api.token.list.query();
      output(json(command), tokens, (list) =>
        table(
          ["NAME", "STARTS", "ACCESS", "EXPIRES", "LAST USED", "STATE"],
          list.map((t) => [
            t.name,
            `${t.prefix}…`,
            t.readOnly ? "read only" : "as you",
            t.expiresAt ? localTime(t.expiresAt) : "never",
            t.lastUsedAt ? localTime(t.lastUsedAt) : "never",
            t.revokedAt ? "revoked" : "active",
          ]),
        ),
      );
    }),
  );
token
  .command("create")
  .description("make an API token; it is printed once")
  .argument("<name>", "what it is for, e.g. ci")
  .option("--read-only", "it reads, and every change made with it is refused")
  .option("--expires <days>", "it stops working after this many days", int("--expires"))
  .action(
    run(async (name: string, options: { readOnly?: boolean; expires?: number }, command: Command) => {
      const { api } = await connect();
      const created = await api.token.create.mutate({ name, readOnly: options.readOnly, expiresInDays: options.expires });
      output(json(command), created, (t) => t.token);
    }),
  );
token
  .command("revoke")
  .description("stop one of your API tokens from working")
  .argument("<name>", "its name")
  .action(
    run(async (name: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      const found = (await api.token.list.query()).find((t) => t.name === name && !t.revokedAt);
      if (!found) throw new CliError(`You have no active token named "${name}"; \`hangar token ls\` lists them.`, EXIT.NOT_FOUND);
      const revoked = await api.token.revoke.mutate({ id: found.id });
      output(json(command), revoked, () => `Token ${name} revoked`);
    }),
  );

const image = program.command("image").description("base images");
image
  .command("ls")
  .description("list images")
  .action(
    run(async (_options: unknown, command: Command) => {
      const { api } = await connect();
      const images = await api.image.list.query();
      output(json(command), images, (list) =>
        table(
          ["NAME", "STATUS", "SIZE", "LOGIN"],
          list.map((i) => [i.name, i.status, mib(i.sizeBytes ?? 0), i.loginUser]),
        ),
      );
    }),
  );
image
  .command("get")
  .description("show one image, and the VMs and pools that use it")
  .argument("<image>", "image name or id")
  .action(
    run(async (name: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      const found = await api.image.get.query({ id: await resolveImage(api, name) });
      output(json(command), found, (i) =>
        [
          `name: ${i.name}`,
          `id: ${i.id}`,
          `status: ${i.status}${i.status === "importing" ? ` (${mib(i.progress)} so far)` : ""}`,
          i.error ? `error: ${i.error}` : "",
          `format: ${i.format}, ${mib(i.sizeBytes ?? 0)}`,
          `boots: ${i.directBoot ? `its own kernel${i.cmdline ? ` (${i.cmdline})` : ""}` : i.firmware}`,
          `login: ${i.loginUser}`,
          i.sha256 ? `sha256: ${i.sha256}` : "",
          `created: ${localTime(i.createdAt)}`,
          `used by: ${[...i.vms.map((vm) => `VM ${vm.name}`), ...i.pools.map((p) => `pool ${p.name}`)].join(", ") || "nothing"}`,
        ]
          .filter(Boolean)
          .join("\n"),
      );
    }),
  );
image
  .command("publish")
  .description("make an image of a Stopped VM's disk (admins)")
  .argument("<vm>", "the VM")
  .argument("<name>", "the image's name")
  .action(
    run(async (vmName: string, name: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      const made = await api.vm.publish.mutate({ id: await resolveVm(api, vmName), name });
      output(json(command), made, (i) => `${i.name} ${i.status}`);
    }),
  );
image
  .command("rm")
  .description("delete an image no VM or pool uses (admins)")
  .argument("<image>", "image name or id")
  .action(
    run(async (name: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      const removed = await api.image.delete.mutate({ id: await resolveImage(api, name) });
      output(json(command), removed, () => `Image ${name} deleted`);
    }),
  );
image
  .command("import")
  .description("import an image from a URL, or a file on the server (admins)")
  .argument("<name>", "the image's name")
  .option("--url <url>", "http(s) URL of a qcow2 or raw disk")
  .option("--path <path>", "a file under the server's images directory")
  .option("--sha256 <hex>", "the expected checksum")
  .option("--login-user <user>", "the account Hangar logs in as (default hangar)")
  .addOption(new Option("--firmware <firmware>", "how it boots (default: uefi for a disk with only an EFI system partition, else bios)").choices(FIRMWARES))
  .action(
    run(async (name: string, options: { url?: string; path?: string; sha256?: string; loginUser?: string; firmware?: Firmware }, command: Command) => {
      const { api } = await connect();
      const started = await api.image.import.mutate({
        name,
        url: options.url,
        path: options.path,
        sha256: options.sha256,
        loginUser: options.loginUser,
        firmware: options.firmware,
      });
      const bar = progressBar(`importing ${name}`, 1, !json(command), "MiB");
      let current: { name: string; status: string; error: string | null; progress: bigint; sizeBytes: bigint } = started;
      while (current.status === "importing") {
        await new Promise((resolve) => setTimeout(resolve, 500));
        current = await api.image.get.query({ id: started.id });
        bar.update(
          Math.round(Number(current.progress) / 2 ** 20),
          Math.max(Math.round(Number(current.sizeBytes ?? 0) / 2 ** 20), Math.round(Number(current.progress) / 2 ** 20), 1),
        );
      }
      bar.stop();
      if (current.status === "failed") throw new CliError(current.error ?? "The import failed; the server gave no reason.", EXIT.FAILED);
      output(json(command), current, (i) => `${i.name} ${i.status}`);
    }),
  );

const snapshot = program.command("snapshot").description("a VM's snapshots (disk, and memory while it runs)");
snapshot
  .command("ls")
  .description("list a VM's snapshots")
  .argument("<vm>", "name")
  .action(
    run(async (name: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      const snapshots = await api.snapshot.list.query({ id: await resolveVm(api, name) });
      output(json(command), snapshots, (list) =>
        table(
          ["NAME", "CREATED", "MEMORY"],
          list.map((s) => [s.name, localTime(s.createdAt), s.vmStateBytes > 0 ? mib(s.vmStateBytes) : "—"]),
        ),
      );
    }),
  );
for (const [verb, action, summary, done] of [
  ["create", "create", "take a snapshot", "took snapshot"],
  ["revert", "revert", "go back to a snapshot", "reverted to snapshot"],
  ["rm", "delete", "delete a snapshot", "deleted snapshot"],
] as const) {
  snapshot
    .command(verb)
    .description(summary)
    .argument("<vm>", "name")
    .argument("<snapshot>", "the snapshot's name")
    .action(
      run(async (name: string, snapshotName: string, _options: unknown, command: Command) => {
        const { api } = await connect();
        const snapshots = await api.snapshot[action].mutate({ id: await resolveVm(api, name), name: snapshotName });
        // What was done first: the list alone reads the same after a create and a revert.
        output(json(command), snapshots, (list) => `${name}: ${done} ${snapshotName}; snapshots: ${list.map((s) => s.name).join(" ") || "(none)"}`);
      }),
    );
}

const forward = program.command("forward").description("a VM's port forwards (host port → guest port)");
const forwardsOf = (vm: { name: string; state: string; ports: { hostPort: number; guestPort: number; boundPort: number | null }[] }) =>
  table(
    ["GUEST", "HOST", "LISTENING"],
    vm.ports.map((p) => [
      String(p.guestPort),
      p.hostPort === 0 ? "any" : String(p.hostPort),
      vm.state === "Running" && p.boundPort ? String(p.boundPort) : "—",
    ]),
  );
forward
  .command("ls")
  .description("list a VM's port forwards")
  .argument("<vm>", "name")
  .action(
    run(async (name: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      const vm = await api.vm.get.query({ id: await resolveVm(api, name) });
      output(json(command), vm.ports, () => forwardsOf(vm));
    }),
  );
forward
  .command("add")
  .description("forward a host port (0: any free one) to a guest port, at once if the VM runs")
  .argument("<vm>", "name")
  .argument("<guest-port>", "the guest's port", int("<guest-port>"))
  .argument("[host-port]", "the host's port (default 0: any free one)", int("[host-port]"), 0)
  .action(
    run(async (name: string, guestPort: number, hostPort: number, _options: unknown, command: Command) => {
      const { api } = await connect();
      const id = await resolveVm(api, name);
      await api.vm.addForward.mutate({ id, guestPort, hostPort });
      const vm = await api.vm.get.query({ id });
      output(json(command), vm.ports, () => forwardsOf(vm));
    }),
  );
forward
  .command("rm")
  .description("stop forwarding a guest port")
  .argument("<vm>", "name")
  .argument("<guest-port>", "the guest's port", int("<guest-port>"))
  .action(
    run(async (name: string, guestPort: number, _options: unknown, command: Command) => {
      const { api } = await connect();
      const id = await resolveVm(api, name);
      await api.vm.removeForward.mutate({ id, guestPort });
      const vm = await api.vm.get.query({ id });
      output(json(command), vm.ports, () => forwardsOf(vm));
    }),
  );

const key = program.command("key").description("your SSH public keys: VMs you create or acquire get them; install adds them to one made before");
key
  .command("ls")
  .description("list your SSH keys")
  .action(
    run(async (_options: unknown, command: Command) => {
      const { api } = await connect();
      const keys = await api.account.sshKeys.query();
      output(json(command), keys, (list) =>
        table(
          ["NAME", "FINGERPRINT"],
          list.map((k) => [k.name, k.fingerprint]),
        ),
      );
    }),
  );
key
  .command("add")
  .description("add a public key (a .pub file, or - for stdin)")
  .argument("<file>", "e.g. ~/.ssh/id_ed25519.pub")
  .option("--name <name>", "what to call it (default: the key's comment)")
  .action(
    run(async (file: string, options: { name?: string }, command: Command) => {
      const publicKey = (file === "-" ? await readStdin() : await readFile(file, "utf8").catch(() => undefined))?.trim();
      if (publicKey === undefined) throw new CliError(`Cannot read ${file}; name your public key file, e.g. ~/.ssh/id_ed25519.pub.`, EXIT.NOT_FOUND);
      const { api } = await connect();
      const added = await api.account.addSshKey.mutate({ publicKey, name: options.name });
      output(json(command), added, (k) => `Added ${k.name} (${k.fingerprint}).`);
    }),
  );
key
  .command("rm")
  .description("remove one of your SSH keys")
  .argument("<key>", "its name or fingerprint")
  .action(
    run(async (which: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      const keys = await api.account.sshKeys.query();
      const found = keys.filter((k) => k.name === which || k.fingerprint === which);
      if (found.length === 0) throw new CliError(`You have no SSH key named "${which}"; \`hangar key ls\` lists them.`, EXIT.NOT_FOUND);
      if (found.length > 1) throw new CliError(`Several of your keys are named "${which}"; name one by its fingerprint.`, EXIT.USAGE);
      const removed = await api.account.removeSshKey.mutate({ id: found[0]?.id ?? "" });
      output(json(command), removed, (k) => `Removed ${k.name} (${k.fingerprint}).`);
    }),
  );
key
  .command("install")
  .description("add your SSH keys to a running VM made before you added them (cloud-init gives keys only at a VM's first boot)")
  .argument("<vm>", "name")
  .action(
    run(async (name: string, _options: unknown, command: Command) => {
      const { api } = await connect();
      const result = await api.vm.addMyKeys.mutate({ id: await resolveVm(api, name) });
      output(json(command), result, (r) =>
        r.added === 0
          ? `${name} already has your ${r.keys === 1 ? "key" : `${r.keys} keys`} (user ${r.user}).`
          : `Added ${r.added} of your keys to ${r.user}@${name}.`,
      );
    }),
  );

program
  .command("events")
  .description("VM events, oldest first; --follow prints each new one as it is recorded")
  .addHelpText(
    "after",
    examples(
      "hangar events web-1 --limit 50",
      "hangar events --follow              # Ctrl+C to stop",
      "hangar events --follow --json | jq -c 'select(.ok | not)'",
    ),
  )
  .argument("[vm]", "only this VM")
  .option("--limit <n>", "how many past events (0 with --follow: only new ones)", count("--limit"), 20)
  .option("-f, --follow", "keep printing new events until interrupted")
  .action(
    run(async (name: string | undefined, options: { limit: number; follow?: boolean }, command: Command) => {
      const { config, api } = await connect();
      // A VM no longer there is looked for by name: a deleted VM's events keep its name, not its id.
      const vmId = name
        ? await resolveVm(api, name).catch((error: unknown) =>
            error instanceof CliError && error.exitCode === EXIT.NOT_FOUND ? undefined : Promise.reject(error),
          )
        : undefined;
      const vmName = name && !vmId ? name : undefined;
      const past = await newestOldestFirst(options.limit, (page) => api.vm.events.query({ vmId, vmName, ...page }));
      if (vmName && options.limit > 0 && past.length === 0)
        throw new CliError(`No VM is named "${vmName}", and none was; \`hangar ls\` lists them.`, EXIT.NOT_FOUND);
      if (vmName) process.stderr.write(`hangar: no VM is named "${vmName}" now; these are the events of the deleted VM(s) of that name.\n`);
      // Past and live events alike: the same columns, or the same JSON object one a line.
      const lines = eventTable(past);
      const seen = seenIds();
      const print = (event: (typeof past)[number]) => {
        if (!seen.first(event.id)) return;
        process.stdout.write(`${json(command) ? toJson(event) : lines.line(event)}\n`);
      };
      if (!json(command)) process.stdout.write(`${lines.header()}\n`);
      for (const event of past) print(event);
      if (!options.follow) return;
      const url = new URL("/api/trpc-ws", config.url);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      // Bearer on the upgrade, no Origin: how a service opens the live channel.
      class WithToken extends WebSocket {
        constructor(address: string | URL) {
          super(address, { headers: { authorization: `Bearer ${config.token}` } });
        }
      }
      // A follower outlives a restart of the server: it says so on stderr and tries again every
      // few seconds (tRPC's own backoff grows to 30 s), resuming from the last event it saw.
      let lost = false;
      const ws = createWSClient({
        url: url.toString(),
        WebSocket: WithToken as unknown as typeof globalThis.WebSocket,
        retryDelayMs: (attempt) => Math.min(1000 * 2 ** attempt, 5000),
        onClose: () => {
          if (!lost) process.stderr.write("hangar: lost the connection to Hangar; reconnecting…\n");
          lost = true;
        },
        onOpen: () => {
          if (lost) process.stderr.write("hangar: reconnected.\n");
          lost = false;
        },
      });
      const live = createTRPCClient<AppRouter>({ links: [wsLink({ client: ws, transformer: superjson })] });
      await new Promise<void>((resolve, reject) => {
        // From the newest past event on: what was recorded since it was read comes first.
        live.vm.onChange.subscribe(past.length > 0 ? { lastEventId: past[past.length - 1]?.id } : undefined, {
          onData: ({ data }) => {
            // The stream's start (whether its replay was all that was missed) is for dashboards' lists.
            if ("caughtUp" in data) return;
            if ((vmId && data.vmId !== vmId) || (vmName && data.vmName !== vmName)) return;
            // Only recorded events: a state in progress (Starting) and a deleted VM's row
            // leaving (Gone) are changes for the dashboard's lists, with no event of their own.
            if (data.event) print(data.event);
          },
          onError: reject,
          onComplete: resolve,
        });
      });
    }),
  );

program
  .command("audit")
  .description("the audit log, oldest first: sign-ins, users, tokens and VM events, with who did what (admins)")
  .addHelpText(
    "after",
    examples("hangar audit --stream audit --action sign-in", "hangar audit --user ana@example.com --limit 100", "hangar audit --vm old-web"),
  )
  .addOption(new Option("--stream <stream>", "only VM events, or only sign-ins and account, user and token changes").choices(["vm", "audit"]))
  .option("--vm <name>", "only this VM's events, a deleted one's too")
  .option("--user <email>", "only what this user did")
  .option("--action <action>", "only this action, e.g. sign-in, token-create, stop")
  .option("--limit <n>", "how many entries", count("--limit"), 50)
  .action(
    run(async (options: { stream?: "vm" | "audit"; vm?: string; user?: string; action?: string; limit: number }, command: Command) => {
      const { api } = await connect();
      const userId = options.user ? await resolveUser(api, options.user) : undefined;
      const filter = { stream: options.stream, vmName: options.vm, userId, action: options.action };
      const entries = await newestOldestFirst(options.limit, (page) => api.audit.list.query({ ...filter, ...page }));
      output(json(command), entries, (list) =>
        table(
          ["TIME", "WHO", "ACTION", "RESULT", "ON", "MESSAGE"],
          list.map((e) => [localTime(e.createdAt, true), e.actor, e.action, e.ok ? "ok" : "FAILED", e.vmName ?? e.target ?? "", e.message]),
        ),
      );
    }),
  );

program
  .command("completion")
  .description('print a shell completion script: eval "$(hangar completion bash)"')
  .addArgument(new Command().createArgument("<shell>", "bash or zsh").choices(["bash", "zsh"]))
  .action((shell: "bash" | "zsh") => void process.stdout.write(completionScript(program, shell)));

try {
  // The first word that is not an option names the command (the program's own take no value).
  const at = process.argv.findIndex((word, i) => i >= 2 && !word.startsWith("-"));
  const argv = process.argv[at] === "ssh" ? [...process.argv.slice(0, at + 1), ...sshCommandWords(process.argv.slice(at + 1))] : process.argv;
  await program.parseAsync(argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Help and version end well; anything commander refused is a usage error.
    process.exitCode = error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help" ? EXIT.OK : EXIT.USAGE;
  } else {
    const failure = asCliError(error);
    process.stderr.write(`hangar: ${failure.message}\n`);
    process.exitCode = failure.exitCode;
  }
}
