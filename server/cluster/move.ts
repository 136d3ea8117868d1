/**
 * Moving a Stopped VM to another host (Incus' `move --target`, Proxmox's offline migration).
 * The VM's host (the source) locks the VM, as for a snapshot, and asks the target, over the
 * internal route below, to take it. The target fetches the VM's files from the source (which
 * serves them only while that move holds the lock), points the disk at the target's own copy
 * of its image, and answers. The source, still holding the lock, then hands the row over (a
 * compare-and-set of hostId, on its own host id and Stopped) and removes its copy.
 *
 * The lock holder decides: the row changes host only there, after the target holds a whole
 * copy. A marker file in each side's VM directory says a move was under way, so whatever a
 * kill -9 cuts short is settled from the row alone (sweep): the side the row does not name
 * removes its copy, the side it names keeps it.
 */
import { createReadStream } from "node:fs";
import { chmod, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { z } from "zod";
import type { Recorder } from "../audit/recorder.ts";
import { CLUSTER_HEADER, issuePass, verifyPass } from "../auth/cluster-secret.ts";
import type { Db } from "../db.ts";
import { movedFiles, removeVmFiles, vmDir, vmFiles } from "../driver/qemu/paths.ts";
import { HangarError, errorDetail, isErrorCode, isHangarError, userMessage } from "../errors.ts";
import { bridgesOf, inMaintenanceSentence, singleHostSentence, type Hosts } from "../hosts.ts";
import { storeName, type ImageFiles, type LocalImage } from "../images/copies.ts";
import type { Lifecycle } from "../vms/lifecycle.ts";
import type { State } from "../vms/state.ts";
import { downloadFromPeer } from "./peer-download.ts";

/** Where a host serves a VM it is moving away (GET …/<id>/<file>) and takes one in (POST …/<id>). */
export const INTERNAL_VMS_PATH = "/internal/vms/";
/** In the source's VM directory while it moves the VM: the target's host id. */
const MOVING_TO = "moving-to";
/** In the target's copy until the row names the target: the source's host id. */
const MOVED_FROM = "moved-from";
/** A target's copy the row never came to name is removed after this long (the source hands the row over at once). */
const UNCLAIMED_AFTER_MS = 10 * 60_000;
/** A target fetches a VM's files into `<vms>/.incoming-<id>`, then renames it into place. */
const INCOMING_PREFIX = ".incoming-";
/** A peer that sends nothing for this long has gone. */
const IDLE_TIMEOUT_MS = 60_000;
/** How often the target says it is still at work on a move. */
const KEEP_ALIVE_MS = 20_000;

const passPurpose = (vmId: string) => `vm-move:${vmId}`;
/** A VM moves at rest: Stopped, or Suspended with its saved state (to a host that can load it). */
const MOVABLE: readonly State[] = ["Stopped", "Suspended"];

type QemuFacts = { name: string; qemuVersion: string; accelerator: string; cpuModel: string };

/**
 * Why a Suspended VM's saved state would not load on `target`, or undefined: it loads only in
 * the same qemu with the same accelerator (a state saved under TCG with `-cpu max` does not load
 * under KVM, nor one of qemu 8.2 in qemu 9), and under KVM (`-cpu host`) on the same CPU model.
 */
export function savedStateMismatch(here: QemuFacts, target: QemuFacts): string | undefined {
  const known = (h: QemuFacts) => h.qemuVersion !== "" && h.accelerator !== "undecided";
  const sameCpu = here.accelerator !== "kvm" || (here.cpuModel !== "" && here.cpuModel === target.cpuModel);
  if (known(here) && here.qemuVersion === target.qemuVersion && here.accelerator === target.accelerator && sameCpu) return undefined;
  const runs = (h: QemuFacts) =>
    known(h)
      ? `host ${h.name} runs qemu ${h.qemuVersion} with ${h.accelerator}${h.accelerator === "kvm" ? ` on ${h.cpuModel || "an unknown CPU"}` : ""}`
      : `host ${h.name} has not said which qemu it runs yet`;
  return `its saved state loads only in the same qemu with the same accelerator (and under KVM on the same CPU model), and ${runs(here)}, ${runs(target)}`;
}

/** Refuses the move of Suspended VM `vmName` from `here` to `target` when its saved state would not load there (both sides check). */
function assertSavedStateLoads(vmName: string, here: QemuFacts, target: QemuFacts): void {
  const mismatch = savedStateMismatch(here, target);
  if (mismatch) throw new HangarError("VM_INVALID_TRANSITION", `VM "${vmName}" is Suspended, and ${mismatch}; resume it and stop it, then move it.`);
}

/** What the source's pass tells the target: who sends, and which files with their sizes. */
const offer = z.object({ from: z.string().min(1), files: z.array(z.object({ name: z.string(), size: z.number().int().nonnegative() })).max(16) });
const answer = z.discriminatedUnion("ok", [z.object({ ok: z.literal(true) }), z.object({ ok: z.literal(false), code: z.string(), message: z.string() })]);

function parseJson(text: string | undefined): unknown {
  try {
    return text === undefined ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

export interface MovesOptions {
  db: Db;
  hosts: Hosts;
  /** Whether several hosts share the database (PostgreSQL). */
  shared: boolean;
  lifecycle: Pick<Lifecycle, "withLock" | "hold">;
  recorder: Recorder;
  stateDir: string;
  localImage: (image: ImageFiles) => Promise<LocalImage>;
  clusterKey: Buffer;
  log?: (message: string) => void;
  /** Called on the source once the VM is the target's (its console viewers here go). */
  onMovedAway?: (vm: { id: string; name: string }, host: string) => void;
}

export type Moves = ReturnType<typeof createMoves>;

export function createMoves({
  db,
  hosts,
  shared,
  lifecycle,
  recorder,
  stateDir,
  localImage,
  clusterKey,
  log = () => undefined,
  onMovedAway = () => undefined,
}: MovesOptions) {
  /** VMs this host is moving away: the files it serves for each. */
  const outgoing = new Map<string, Set<string>>();
  /** VMs this host is taking in. */
  const incoming = new Set<string>();
  const vmsDir = path.join(path.resolve(stateDir), "vms");
  const incomingDir = (vmId: string) => path.join(vmsDir, `${INCOMING_PREFIX}${vmId}`);

  /**
   * Moves Stopped or Suspended VM `vmId`, of this host, to host `targetId`; returns once the
   * row names the target. An evacuation's move remembers this host on the VM (host.restore
   * brings it back); any other move forgets where an evacuation took it from.
   */
  async function moveVm(vmId: string, targetId: string, actor: string, { evacuation = false } = {}): Promise<void> {
    const vm = await db.vm.findUnique({ where: { id: vmId } });
    if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${vmId}".`);
    if (!shared) throw new HangarError("INVALID_INPUT", singleHostSentence(", so there is no other host to move a VM to."));
    const self = await hosts.selfId();
    const source = hosts.name;
    const target = await db.host.findUnique({ where: { id: targetId } });
    if (!target) throw new HangarError("NOT_FOUND", `No host with id "${targetId}"; host.list (hangar host ls) names them.`);
    if (target.id === self) throw new HangarError("INVALID_INPUT", `VM "${vm.name}" is on host ${target.name} already.`);
    if (!hosts.isOnline(target)) throw new HangarError("HOST_OFFLINE", `Host ${target.name} is offline; move VM "${vm.name}" once its Hangar runs again.`);
    if (target.maintenanceSince) throw new HangarError("HOST_IN_MAINTENANCE", inMaintenanceSentence(target.name));
    if (vm.poolId && !vm.acquiredAt) {
      throw new HangarError("INVALID_INPUT", `VM "${vm.name}" waits in a pool, which places its VMs itself; acquire it first, or move nothing.`);
    }
    if (vm.network === "bridge" && vm.bridge && !bridgesOf(target).includes(vm.bridge)) {
      throw new HangarError("INVALID_INPUT", `VM "${vm.name}" joins bridge ${vm.bridge}, which host ${target.name} does not offer (its HANGAR_BRIDGES).`);
    }
    const suspended = vm.state === "Suspended";
    if (suspended) assertSavedStateLoads(vm.name, await db.host.findUniqueOrThrow({ where: { id: self } }), target);
    await lifecycle.withLock(vmId, `moving to host ${target.name}`, MOVABLE, async () => {
      const files = vmFiles(stateDir, vmId);
      const present: { name: string; size: number }[] = [];
      for (const file of movedFiles(files, { suspended })) {
        const info = await stat(file).catch(() => undefined);
        if (info?.isFile()) present.push({ name: path.basename(file), size: info.size });
      }
      if (!present.some((f) => f.name === path.basename(files.disk))) {
        throw new HangarError("INVALID_INPUT", `VM "${vm.name}" has no disk on host ${source}; there is nothing to move.`);
      }
      await writeFile(path.join(files.dir, MOVING_TO), target.id);
      outgoing.set(vmId, new Set(present.map((f) => f.name)));
      const started = Date.now();
      let failure: unknown;
      try {
        await askToTake(vm, target, { from: self, files: present });
      } catch (error) {
        failure = error;
      } finally {
        outgoing.delete(vmId);
      }
      // Only here does the row change host: the target holds a whole copy by now, or the move failed.
      const handed =
        failure === undefined &&
        (await db.vm.updateMany({ where: { id: vmId, hostId: self, state: vm.state }, data: { hostId: target.id, evacuatedFrom: evacuation ? self : null } }))
          .count === 1;
      if (!handed) {
        await rm(path.join(files.dir, MOVING_TO), { force: true });
        const why = failure === undefined ? "it changed meanwhile" : userMessage(failure);
        log(`moving VM ${vm.name} to host ${target.name} failed: ${failure === undefined ? why : errorDetail(failure)}`);
        throw new HangarError(isHangarError(failure) ? failure.code : "DRIVER_FAILED", `Moving VM "${vm.name}" to host ${target.name} failed: ${why}`, {
          cause: failure,
        });
      }
      await removeCopy(vmId);
      onMovedAway(vm, target.name);
      const mib = Math.round(present.reduce((sum, f) => sum + f.size, 0) / 2 ** 20);
      await recorder.record({
        stream: "vm",
        vm: { id: vmId, name: vm.name },
        actor,
        action: "move",
        ok: true,
        live: true,
        message: `Moved from host ${source} to host ${target.name} (${mib} MiB in ${((Date.now() - started) / 1000).toFixed(1)} s)${suspended ? " with its saved state: a start resumes it there" : ""}`,
      });
    });
  }

  /** Asks `target` to take the VM, and waits for its answer; fails at once if the target goes offline meanwhile. */
  async function askToTake(vm: { id: string; name: string }, target: { id: string; name: string; apiAddress: string }, what: z.infer<typeof offer>) {
    const gone = new AbortController();
    const watch = setInterval(
      () => {
        void db.host.findUnique({ where: { id: target.id } }).then(
          (row) => {
            if (!row || !hosts.isOnline(row)) gone.abort(new HangarError("HOST_OFFLINE", `host ${target.name} went offline before it had taken the VM`));
          },
          (error: unknown) => log(`watching host ${target.name}: ${errorDetail(error)}`),
        );
      },
      Math.min(5000, Math.floor(hosts.offlineAfterMs / 3)),
    );
    try {
      const response = await fetch(new URL(`${INTERNAL_VMS_PATH}${encodeURIComponent(vm.id)}`, target.apiAddress), {
        method: "POST",
        headers: { [CLUSTER_HEADER]: issuePass(clusterKey, passPurpose(vm.id), what) },
        signal: gone.signal,
      }).catch((error: unknown) => {
        throw gone.signal.aborted ? gone.signal.reason : new HangarError("HOST_OFFLINE", `host ${target.name} could not be reached`, { cause: error });
      });
      const body = await response.text().catch((error: unknown) => {
        throw gone.signal.aborted
          ? gone.signal.reason
          : new HangarError("HOST_OFFLINE", `host ${target.name} stopped answering before it had taken the VM`, { cause: error });
      });
      const lines = body.split("\n").filter(Boolean);
      const parsed = answer.safeParse(parseJson(lines.at(-1)));
      if (!parsed.success) throw new Error(`host ${target.name} answered ${response.status} without a readable outcome`);
      if (!parsed.data.ok) throw new HangarError(isErrorCode(parsed.data.code) ? parsed.data.code : "DRIVER_FAILED", parsed.data.message);
    } finally {
      clearInterval(watch);
    }
  }

  /** Removes this host's copy of a VM the row no longer names. */
  const removeCopy = (vmId: string) => removeVmFiles(vmFiles(stateDir, vmId));

  /** The target's side: fetches the offered files into a directory of its own, then puts it in place. */
  async function take(vmId: string, from: string, files: { name: string; size: number }[]): Promise<void> {
    const vm = await db.vm.findUnique({ where: { id: vmId }, include: { image: true } });
    if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${vmId}".`);
    const source = await db.host.findUnique({ where: { id: from } });
    if (!source || vm.hostId !== from || !MOVABLE.some((state) => state === vm.state)) {
      throw new HangarError("VM_BUSY", `VM "${vm.name}" is not a Stopped or Suspended VM of the host that offered it; try again once it settles.`);
    }
    const suspended = vm.state === "Suspended";
    if (suspended) assertSavedStateLoads(vm.name, source, await db.host.findUniqueOrThrow({ where: { id: await hosts.selfId() } }));
    const place = vmDir(stateDir, vmId);
    // Two hosts on one state directory would each remove the copy the other holds.
    const self = await hosts.selfId();
    if ((await readFile(path.join(place, MOVING_TO), "utf8").catch(() => undefined)) === self) {
      throw new HangarError("INVALID_INPUT", "The two hosts share one state directory; give each host its own HANGAR_STATE_DIR.");
    }
    const vmFilesHere = vmFiles(stateDir, vmId);
    const allowed = new Set(movedFiles(vmFilesHere, { suspended }).map((file) => path.basename(file)));
    if (files.some((f) => !allowed.has(f.name)))
      throw new HangarError("INVALID_INPUT", "The move offered a file that is not part of a VM; the hosts may run different Hangar versions.");
    // Its image first: a disk is an overlay on it, and the image may be on the source only.
    const image = await localImage(vm.image);
    const dir = incomingDir(vmId);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    try {
      await writeFile(path.join(dir, MOVED_FROM), from);
      for (const file of files) await fetchFile(source, vmId, file, path.join(dir, file.name));
      const disk = path.join(dir, path.basename(vmFilesHere.disk));
      await rebaseOnLocalImage(disk, image.path);
      await checkDisk(disk);
      // Left by an earlier move of this VM away from here: the row names another host, so it is stale.
      await rm(place, { recursive: true, force: true });
      await rename(dir, place);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  async function fetchFile(source: { name: string; apiAddress: string }, vmId: string, file: { name: string; size: number }, to: string): Promise<void> {
    const url = new URL(`${INTERNAL_VMS_PATH}${encodeURIComponent(vmId)}/${encodeURIComponent(file.name)}`, source.apiAddress);
    const received = await downloadFromPeer(url, issuePass(clusterKey, passPurpose(vmId)), to, { idleTimeoutMs: IDLE_TIMEOUT_MS }).catch((error: unknown) => {
      throw new HangarError("DRIVER_FAILED", `fetching the VM's ${file.name} from host ${source.name} failed`, { cause: error });
    });
    if (received !== file.size) throw new HangarError("DRIVER_FAILED", `host ${source.name} sent ${received} bytes of the VM's ${file.name}, not ${file.size}`);
  }

  /**
   * Points an overlay at this host's copy of its image: the store path differs between hosts,
   * the file (named by its content) does not. A disk on anything but its image's file is refused.
   */
  async function rebaseOnLocalImage(disk: string, localBase: string): Promise<void> {
    const { stdout } = await execa("qemu-img", ["info", "--output=json", "-f", "qcow2", "--", disk]);
    const info = z.object({ "backing-filename": z.string().optional(), "backing-filename-format": z.string().optional() }).parse(JSON.parse(stdout));
    const backing = info["backing-filename"];
    if (backing === undefined) return;
    if (storeName(backing) !== path.basename(localBase))
      throw new HangarError("INVALID_INPUT", "The VM's disk stands on another file than its image; it cannot be moved.");
    const format = info["backing-filename-format"] === "raw" ? "raw" : "qcow2";
    await execa("qemu-img", ["rebase", "-q", "-u", "-f", "qcow2", "-b", localBase, "-F", format, "--", disk]);
  }

  /** A copy cut short or garbled on the way has qcow2 metadata that does not add up: qemu-img check says so (3 is only leaked clusters). */
  async function checkDisk(disk: string): Promise<void> {
    const check = await execa("qemu-img", ["check", "-q", "-f", "qcow2", "--", disk], { reject: false });
    if (check.exitCode !== 0 && check.exitCode !== 3)
      throw new HangarError("DRIVER_FAILED", "the VM's disk arrived damaged (qemu-img check found errors); try the move again");
  }

  /**
   * GET /internal/vms/<id>/<file>: a file of a VM this host is moving away, to the target.
   * POST /internal/vms/<id>: the source asks this host to take the VM (the pass says which files).
   * Both answer only a pass signed with the cluster key for that VM.
   */
  function serve(req: IncomingMessage, res: ServerResponse): void {
    const text = (status: number, body: string) => res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" }).end(body);
    let parts: string[];
    try {
      parts = new URL(req.url ?? "/", "http://hangar").pathname.slice(INTERNAL_VMS_PATH.length).split("/").map(decodeURIComponent);
    } catch {
      return void text(400, "Not a path of this endpoint.");
    }
    const [vmId, fileName, ...rest] = parts;
    const pass = vmId ? verifyPass(clusterKey, req.headers[CLUSTER_HEADER], passPurpose(vmId)) : undefined;
    if (!vmId || rest.length > 0 || !pass) return void text(403, "This endpoint is for Hangar hosts only.");
    if (req.method === "GET" && fileName) {
      if (!outgoing.get(vmId)?.has(fileName)) return void text(404, "This host is not moving that VM.");
      const file = path.join(vmDir(stateDir, vmId), fileName);
      return void stat(file).then(
        (info) => {
          res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": String(info.size) });
          pipeline(createReadStream(file), res).catch(() => res.destroy());
        },
        () => void text(404, "No such file."),
      );
    }
    if (req.method !== "POST" || fileName !== undefined) return void text(405, "GET a file, or POST to take the VM.");
    const offered = offer.safeParse(pass.data);
    // The answer comes once the copy is whole, minutes later for a large disk: a newline now
    // and then keeps the source's request from timing out meanwhile (undici's 300 s).
    res.writeHead(200, { "Content-Type": "application/x-ndjson" });
    const beat = setInterval(() => res.write("\n"), KEEP_ALIVE_MS);
    const reply = (body: z.infer<typeof answer>) => {
      clearInterval(beat);
      res.end(`${JSON.stringify(body)}\n`);
    };
    if (!offered.success)
      return void reply({ ok: false, code: "INVALID_INPUT", message: "The move was not readable; the hosts may run different Hangar versions." });
    if (incoming.has(vmId)) return void reply({ ok: false, code: "VM_BUSY", message: `Host ${hosts.name} is taking that VM already.` });
    incoming.add(vmId);
    void lifecycle
      .hold(vmId, () => take(vmId, offered.data.from, offered.data.files))
      .then(
        () => {
          reply({ ok: true });
          void untilHanded(vmId);
        },
        (error: unknown) => {
          log(`taking VM ${vmId} from another host failed: ${errorDetail(error)}`);
          reply({
            ok: false,
            code: isHangarError(error) ? error.code : "DRIVER_FAILED",
            message: `host ${hosts.name} could not take it: ${userMessage(error)}`,
          });
        },
      )
      .finally(() => incoming.delete(vmId));
  }

  /** Once the source has handed the row over (at once, as it reads the answer), the copy is this host's VM: its marker goes. */
  async function untilHanded(vmId: string): Promise<void> {
    const self = await hosts.selfId();
    for (let tries = 0; tries < 300; tries += 1) {
      const row = await db.vm.findUnique({ where: { id: vmId }, select: { hostId: true } }).catch(() => undefined);
      if (row?.hostId === self) return void (await rm(path.join(vmDir(stateDir, vmId), MOVED_FROM), { force: true }));
      await sleep(200);
    }
  }

  /**
   * Settles what a move cut short left in this host's VM directories, from the row: a source
   * whose row went to the target removes its copy, else keeps it; a target whose row never came
   * removes its copy (after UNCLAIMED_AFTER_MS, should the source be handing it over right now),
   * else keeps it. A half-fetched copy goes. Moves under way in this process are left alone.
   */
  async function sweep(): Promise<void> {
    const self = await hosts.selfId();
    for (const entry of await readdir(vmsDir).catch(() => [])) {
      if (entry.startsWith(INCOMING_PREFIX)) {
        if (!incoming.has(entry.slice(INCOMING_PREFIX.length))) await rm(path.join(vmsDir, entry), { recursive: true, force: true });
        continue;
      }
      if (outgoing.has(entry) || incoming.has(entry)) continue;
      const dir = path.join(vmsDir, entry);
      const movingTo = await readFile(path.join(dir, MOVING_TO), "utf8").catch(() => undefined);
      const movedFrom = await stat(path.join(dir, MOVED_FROM)).catch(() => undefined);
      if (movingTo === undefined && movedFrom === undefined) continue;
      const row = await db.vm.findUnique({ where: { id: entry }, select: { name: true, hostId: true } });
      // A move of it may have begun while the files and the row were read.
      if (outgoing.has(entry) || incoming.has(entry)) continue;
      if (row?.hostId === self) {
        await rm(path.join(dir, movingTo === undefined ? MOVED_FROM : MOVING_TO), { force: true });
      } else if (movingTo !== undefined ? !row || row.hostId === movingTo : !row || Date.now() - (movedFrom?.mtimeMs ?? 0) > UNCLAIMED_AFTER_MS) {
        await removeCopy(entry);
        log(`VM ${row?.name ?? entry}: the copy a move left on this host was removed (the VM is on another host, or gone)`);
      }
    }
  }

  return { moveVm, serve, sweep };
}
