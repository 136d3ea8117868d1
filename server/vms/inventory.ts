/** Reading and creating VM rows: what the routers call besides lifecycle actions. */
import { realpath } from "node:fs/promises";
import path from "node:path";
import { CommandTimeoutError } from "../driver/manager.ts";
import { HangarError, errorMessage, userMessage } from "../errors.ts";
import { isIso9660 } from "../images/iso.ts";
import { assertWithinQuota } from "../auth/users.ts";
import { authorizedKeysOf, INSTALL_KEYS_COMMAND } from "../auth/ssh-keys.ts";
import type { Hangar } from "../hangar.ts";
import { inMaintenanceSentence } from "../hosts.ts";
import { diskOf } from "./disks.ts";
import { checkNetwork, type NetworkMode } from "./forwards.ts";
import { announceRowChange } from "./bus.ts";
import { stoppedMeanwhile, type CloneInfo } from "./lifecycle.ts";
import { isState, transition, validActions, type Action, type State } from "./state.ts";
import { checkTags, decodeTags, encodeTags } from "./tags.ts";
import { waitForState } from "./wait.ts";

export interface CreateVmInput {
  name: string;
  imageId: string;
  /** The host asked for; placement checks it is this one, online and with room. */
  hostId?: string;
  /** An imported ISO image for the CD-ROM drive. */
  cdromImageId?: string;
  cpus: number;
  memoryMiB: number;
  userData?: string;
  /** The disk's size; the image's when absent or smaller. */
  diskGiB?: number;
  /** Start it when its host boots; default no. */
  autostart?: boolean;
  description?: string;
  tags?: string[];
  /** Default nat. */
  network?: NetworkMode;
  bridge?: string;
  ports?: { hostPort: number; guestPort: number }[];
}

const vmInclude = {
  image: { select: { id: true, name: true, loginUser: true } },
  cdromImage: { select: { id: true, name: true } },
  ports: true,
  owner: { select: { id: true, email: true } },
  host: { select: { id: true, name: true, heartbeatAt: true } },
} as const;

/**
 * The row with its host as the API shows it, and `hostOffline` when that host has no recent
 * heartbeat: such a VM offers no actions until its host is back.
 */
function withHost<T extends { state: string; tags: string; host: { id: string; name: string; heartbeatAt: Date } | null }>(hangar: Hangar, vm: T) {
  const hostOffline = vm.host !== null && !hangar.hosts.isOnline(vm.host);
  const { tags, host, ...row } = withActions(vm);
  return {
    ...row,
    tags: decodeTags(tags),
    host: host ? { id: host.id, name: host.name } : null,
    hostOffline,
    actions: hostOffline ? [] : row.actions,
  };
}

/**
 * The row with its state typed and the actions a person can take now: the valid ones that
 * change the state (Stop on a Stopped VM is valid but does nothing, so it is not offered).
 */
function withActions<T extends { state: string }>(vm: T): T & { state: State; actions: Exclude<Action, "None">[] } {
  const state: State = isState(vm.state) ? vm.state : "ErrorUnknown";
  const actions = validActions(state).filter((a): a is Exclude<Action, "None"> => a !== "None" && transition(state, a) !== state);
  return { ...vm, state, actions };
}

/** A restart or release under way: the lifecycle's and the reconciler's, in no answer. */
const internal = { restartPending: true, releasePending: true } as const;

/** What a list row leaves out: user-data can be long; it and where an evacuation took the VM from are only on vm.get. */
const slim = { omit: { userData: true, description: true, evacuatedFrom: true, ...internal } } as const;

/**
 * The inventory: every VM with its image, ports, owner and host (vm.list pages it, list.ts).
 * The relations are few rows (images, users, hosts) looked up in maps: much cheaper than
 * Prisma's per-row relation joins on a thousand VMs.
 */
export async function readInventory(hangar: Hangar) {
  const { db, metrics } = hangar;
  const [vms, images, owners, hosts, ports] = await Promise.all([
    db.vm.findMany({ orderBy: { createdAt: "asc" }, ...slim }),
    db.image.findMany({ select: { id: true, name: true } }),
    db.user.findMany({ select: { id: true, email: true } }),
    db.host.findMany({ select: { id: true, name: true, heartbeatAt: true } }),
    db.portForward.findMany(),
  ]);
  const byId = <T extends { id: string }>(rows: T[]) => new Map(rows.map((row) => [row.id, row]));
  const imageById = byId(images);
  const ownerById = byId(owners);
  const hostById = byId(hosts);
  const portsByVm = new Map<string, typeof ports>();
  for (const port of ports) portsByVm.set(port.vmId, [...(portsByVm.get(port.vmId) ?? []), port]);
  return vms.map((vm) =>
    withHost(hangar, {
      ...vm,
      image: imageById.get(vm.imageId) ?? { id: vm.imageId, name: "(deleted)" },
      ports: portsByVm.get(vm.id) ?? [],
      owner: vm.ownerId ? (ownerById.get(vm.ownerId) ?? null) : null,
      host: vm.hostId ? (hostById.get(vm.hostId) ?? null) : null,
      usage: metrics.usage(vm.id),
    }),
  );
}

/** One VM as vm.list shows it (what a live change carries), or null once it is gone. */
export async function listRow(hangar: Hangar, id: string) {
  const vm = await hangar.db.vm.findUnique({ where: { id }, ...slim, include: vmInclude });
  return vm ? withHost(hangar, { ...vm, usage: hangar.metrics.usage(vm.id) }) : null;
}

const SERIAL_TAIL_BYTES = 16 * 1024;

/** The end of the VM's serial log, read on its host: "" while that host is offline (its files are there). */
export async function vmSerialTail(hangar: Hangar, id: string): Promise<string> {
  const vm = await hangar.db.vm.findUnique({ where: { id }, select: { hostId: true } });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${id}"; it may have been deleted.`);
  if ((await hangar.cluster.locate(vm.hostId)).kind !== "here") return "";
  return hangar.driverFor(id).serialTail(SERIAL_TAIL_BYTES);
}

export async function getVm(hangar: Hangar, id: string) {
  const vm = await hangar.db.vm.findUnique({ where: { id }, include: vmInclude, omit: internal });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${id}"; it may have been deleted.`);
  // The VM's files are on its host: read here only when this is it (vm.get runs there while
  // it is online, and answers from the database alone while it is offline).
  const here = (await hangar.cluster.locate(vm.hostId)).kind === "here";
  const driver = hangar.driverFor(id);
  const serialTail = here ? await driver.serialTail(SERIAL_TAIL_BYTES) : "";
  const sshKeyPath = here
    ? await driver.identity().then(
        (identity) => identity.privateKeyFile,
        () => null,
      )
    : null;
  const [disk, lastStop] = await Promise.all([
    here ? diskOf(hangar, id) : null,
    hangar.db.event.findFirst({
      where: { vmId: id, action: "stop" },
      orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      select: { message: true, ok: true, createdAt: true },
    }),
  ]);
  return { ...withHost(hangar, vm), serialTail, sshKeyPath, disk, lastStop };
}

/**
 * A row in Initial (with its port forwards), then the Clone action makes its disk. The VM
 * belongs to `ownerId` (within their quota) and to this host, which placement chose (the
 * router forwards a create to the host it picks, and refuses a host that cannot take it).
 */
export async function createVm(hangar: Hangar, input: CreateVmInput, actor: string, ownerId?: string) {
  const { db } = hangar;
  const bridge = checkNetwork(input);
  const tags = encodeTags(checkTags(input.tags ?? []));
  // A name taken is said first, as clone does: at a quota, "delete one first" misleads.
  if (await db.vm.findUnique({ where: { name: input.name } })) {
    throw new HangarError("ALREADY_EXISTS", `A VM named "${input.name}" already exists; pick another name.`);
  }
  if (ownerId) await assertWithinQuota(db, ownerId, input.cpus, input.memoryMiB);
  const image = await db.image.findUnique({ where: { id: input.imageId } });
  if (!image) throw new HangarError("NOT_FOUND", `No image with id "${input.imageId}"; pick one from the Images page.`);
  if (image.status !== "ready") throw new HangarError("IMAGE_NOT_READY", `Image "${image.name}" is ${image.status}; wait until it is ready.`);
  const host = await hangar.cluster.place({
    hostId: input.hostId ?? (await hangar.lifecycle.hostId()),
    memoryMiB: input.memoryMiB,
    imageId: image.id,
    bridge: bridge ?? undefined,
  });
  if (!host.here) throw new Error(`createVm ran on a host placement did not pick (${host.name})`);
  const cdrom = input.cdromImageId ? await cdromImage(hangar, input.cdromImageId) : undefined;
  const ports = input.ports ?? [];
  const taken = ports.filter((p) => p.hostPort !== 0).map((p) => p.hostPort);
  if (taken.length > 0) {
    const clash = await db.portForward.findFirst({ where: { hostPort: { in: taken } }, include: { vm: { select: { name: true } } } });
    if (clash) throw new HangarError("PORT_IN_USE", `Host port ${clash.hostPort} is already forwarded to VM "${clash.vm.name}".`);
  }
  const vm = await db.vm.create({
    data: {
      name: input.name,
      imageId: image.id,
      cdromImageId: cdrom?.id ?? null,
      cpus: input.cpus,
      memoryMiB: input.memoryMiB,
      userData: input.userData ?? null,
      network: input.network ?? "nat",
      bridge,
      diskGiB: input.diskGiB ?? null,
      autostart: input.autostart ?? false,
      description: input.description?.trim() ?? "",
      tags,
      ownerId: ownerId ?? null,
      hostId: host.id,
      ports: { create: ports.map((p) => ({ hostPort: p.hostPort, guestPort: p.guestPort })) },
    },
  });
  await hangar.recorder.record({
    stream: "vm",
    vm,
    actor,
    action: "create",
    to: "Initial",
    ok: true,
    message: `Created from image ${image.name}${cdrom ? `, CD-ROM ${cdrom.name}` : ""}`,
    userId: ownerId,
  });
  await hangar.lifecycle.cloneVm(vm.id, actor);
  return getVm(hangar, vm.id);
}

/** The image named for a CD-ROM drive: imported, ready, and an ISO9660 image. */
async function cdromImage({ db }: Hangar, imageId: string) {
  const image = await db.image.findUnique({ where: { id: imageId } });
  if (!image) throw new HangarError("NOT_FOUND", `No image with id "${imageId}" for the CD-ROM; import the ISO on the Images page first.`);
  if (image.status !== "ready") throw new HangarError("IMAGE_NOT_READY", `Image "${image.name}" is ${image.status}; wait until it is ready.`);
  if (image.format !== "raw" || !(await isIso9660(image.path))) {
    throw new HangarError("INVALID_INPUT", `Image "${image.name}" is not an ISO image, so it cannot go in the CD-ROM drive.`);
  }
  return image;
}

/**
 * vm.wait: until the VM is ready (its condition settled, see readiness.ts) or in `for`;
 * returns the VM as getVm does. TIMEOUT when it does not happen in time.
 */
export async function waitForVm(hangar: Hangar, input: { id: string; for: "ready" | State; timeoutSec: number }, actor: string, signal?: AbortSignal) {
  const vm = await hangar.db.vm.findUnique({ where: { id: input.id }, select: { id: true, name: true } });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${input.id}"; it may have been deleted.`);
  const timeoutMs = input.timeoutSec * 1000;
  if (input.for === "ready") await hangar.lifecycle.waitForReady(input.id, timeoutMs, signal);
  else {
    await waitForState(hangar.lifecycle.instance(input.id, actor), input.for, { timeoutMs, signal, label: `"${vm.name}"` });
  }
  if (input.for === "Deleted") return null;
  return getVm(hangar, input.id);
}

/** How long a sync waits for a booting VM to be ready. */
const SYNC_READY_WAIT_MS = 120_000;

/**
 * Clone a Stopped VM into a new one: same image and spec, a copy of its disk, a fresh
 * SSH key and cloud-init instance-id (so it boots as a new machine with its own hostname),
 * cloneInfo naming the source. Port forwards come along with host ports picked anew.
 */
export async function cloneExistingVm(hangar: Hangar, input: { id: string; name: string }, actor: string, ownerId?: string) {
  const { db } = hangar;
  const source = await db.vm.findUnique({ where: { id: input.id }, include: { ports: true } });
  if (!source) throw new HangarError("NOT_FOUND", `No VM with id "${input.id}"; it may have been deleted.`);
  if (source.state !== "Stopped") {
    throw new HangarError("VM_INVALID_TRANSITION", `VM "${source.name}" is ${source.state}; stop it before cloning it.`);
  }
  if (hangar.lifecycle.isBusy(source.id)) throw new HangarError("VM_BUSY", `VM "${source.name}" has an action under way; clone it once it settles.`);
  if (await db.vm.findUnique({ where: { name: input.name } })) {
    throw new HangarError("ALREADY_EXISTS", `A VM named "${input.name}" already exists; pick another name.`);
  }
  if (ownerId) await assertWithinQuota(db, ownerId, source.cpus, source.memoryMiB);
  // A clone is made beside its source: on a host being emptied, it would be one more VM to move.
  const host = source.hostId ? await db.host.findUnique({ where: { id: source.hostId }, select: { name: true, maintenanceSince: true } }) : null;
  if (host?.maintenanceSince) throw new HangarError("HOST_IN_MAINTENANCE", inMaintenanceSentence(host.name));
  const cloneInfo: CloneInfo = { sourceVmId: source.id, sourceName: source.name };
  const vm = await db.vm.create({
    data: {
      name: input.name,
      imageId: source.imageId,
      cdromImageId: source.cdromImageId,
      cpus: source.cpus,
      memoryMiB: source.memoryMiB,
      userData: source.userData,
      network: source.network,
      bridge: source.bridge,
      diskGiB: source.diskGiB,
      autostart: source.autostart,
      autostartOrder: source.autostartOrder,
      autostartDelaySec: source.autostartDelaySec,
      description: source.description,
      tags: source.tags,
      cloneInfo: JSON.stringify(cloneInfo),
      ownerId: ownerId ?? null,
      hostId: source.hostId ?? (await hangar.lifecycle.hostId()),
      ports: { create: source.ports.map((p) => ({ hostPort: 0, guestPort: p.guestPort })) },
    },
  });
  await hangar.recorder.record({ stream: "vm", vm, actor, action: "create", to: "Initial", ok: true, message: `Clone of VM ${source.name}`, userId: ownerId });
  await hangar.lifecycle.cloneVm(vm.id, actor);
  return getVm(hangar, vm.id);
}

/**
 * The VM row once it runs and is ready (or cloud-init ended with an error: the guest is
 * then as ready as it gets), waiting up to `timeoutMs` for that; NOT_RUNNING when it does
 * not run, TIMEOUT when it is not ready in time.
 */
async function readyVm(hangar: Hangar, id: string, timeoutMs: number) {
  const found = await hangar.db.vm.findUnique({ where: { id }, include: { image: { select: { loginUser: true } } } });
  if (!found) throw new HangarError("NOT_FOUND", `No VM with id "${id}"; it may have been deleted.`);
  if (found.state !== "Running" && found.state !== "Starting") throw new HangarError("NOT_RUNNING", `VM "${found.name}" is ${found.state}; start it first.`);
  if (found.state !== "Running" || (found.readyState !== "ready" && found.readyState !== "error")) {
    await hangar.lifecycle.waitForReady(id, timeoutMs);
  }
  const vm = await hangar.db.vm.findUniqueOrThrow({ where: { id }, include: { image: { select: { loginUser: true } } } });
  if (vm.state !== "Running" || !vm.sshPort) throw new HangarError("NOT_RUNNING", `VM "${vm.name}" is ${vm.state}; start it first.`);
  return { ...vm, sshPort: vm.sshPort, loginUser: vm.image.loginUser };
}

/** Sets what VM `id` is for (empty: nothing said), in any state. */
export async function describeVm(hangar: Hangar, input: { id: string; description: string }, actor: string) {
  const vm = await hangar.db.vm.findUnique({ where: { id: input.id }, select: { id: true, name: true, description: true } });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${input.id}"; it may have been deleted.`);
  const description = input.description.trim();
  if (description !== vm.description) {
    await hangar.db.vm.update({ where: { id: vm.id }, data: { description } });
    const event = await hangar.recorder.record({
      stream: "vm",
      vm,
      actor,
      action: "describe",
      ok: true,
      message: description ? "Description changed" : "Description removed",
    });
    await announceRowChange(hangar, vm, event.id);
  }
  return { description };
}

/** A member waiting in a pool is the pool's to keep or delete: changes to it wait for an acquire. */
function refuseWaitingMember(vm: { name: string; acquiredAt: Date | null; pool: { name: string } | null }) {
  if (vm.pool && !vm.acquiredAt) {
    throw new HangarError("INVALID_INPUT", `VM "${vm.name}" waits in pool "${vm.pool.name}", which deletes its members as it needs; acquire it first.`);
  }
}

/**
 * Protection on or off (Proxmox's Protection): a protected VM cannot be deleted, whatever
 * asks (lifecycle.ts refuses). A pool's waiting members are the pool's to delete.
 */
export async function setProtection(hangar: Hangar, input: { id: string; protection: boolean }, actor: string) {
  const vm = await hangar.db.vm.findUnique({
    where: { id: input.id },
    select: { id: true, name: true, protection: true, acquiredAt: true, pool: { select: { name: true } } },
  });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${input.id}"; it may have been deleted.`);
  refuseWaitingMember(vm);
  if (vm.protection === input.protection) return { protection: vm.protection };
  await hangar.db.vm.update({ where: { id: vm.id }, data: { protection: input.protection } });
  const message = input.protection ? "Protected from deletion" : "No longer protected from deletion";
  const event = await hangar.recorder.record({ stream: "vm", vm, actor, action: "protection", ok: true, message });
  await announceRowChange(hangar, vm, event.id);
  return { protection: input.protection };
}

/**
 * Gives VM `id` to another user (`ownerId`), or to nobody (null: only admins control it then,
 * as a removed user's VMs), in any state. The new owner's quota counts it; a member waiting
 * in a pool is the pool's.
 */
export async function setOwner(hangar: Hangar, input: { id: string; ownerId: string | null }, actor: string) {
  const { db } = hangar;
  const vm = await db.vm.findUnique({
    where: { id: input.id },
    select: { id: true, name: true, cpus: true, memoryMiB: true, ownerId: true, acquiredAt: true, pool: { select: { name: true } } },
  });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${input.id}"; it may have been deleted.`);
  refuseWaitingMember(vm);
  const owner = input.ownerId ? await db.user.findUnique({ where: { id: input.ownerId }, select: { id: true, email: true, role: true } }) : null;
  if (input.ownerId && !owner) throw new HangarError("NOT_FOUND", `No user with id "${input.ownerId}"; they may have been removed.`);
  if (owner?.role === "viewer") {
    throw new HangarError("INVALID_INPUT", `${owner.email} is a viewer, who cannot control VMs; make them an operator first.`);
  }
  if ((owner?.id ?? null) === vm.ownerId) return { ownerId: vm.ownerId };
  if (owner) await assertWithinQuota(db, owner.id, vm.cpus, vm.memoryMiB, { owner: owner.email });
  await db.vm.update({ where: { id: vm.id }, data: { ownerId: owner?.id ?? null } });
  const message = owner ? `Given to ${owner.email}` : "Owner removed: only admins control it";
  const event = await hangar.recorder.record({ stream: "vm", vm, actor, action: "owner", ok: true, message });
  await announceRowChange(hangar, vm, event.id);
  return { ownerId: owner?.id ?? null };
}

/** Replaces VM `id`'s tags (none: `[]`), in any state. */
export async function setTags(hangar: Hangar, input: { id: string; tags: string[] }, actor: string) {
  const tags = checkTags(input.tags);
  const vm = await hangar.db.vm.findUnique({ where: { id: input.id }, select: { id: true, name: true, tags: true } });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${input.id}"; it may have been deleted.`);
  const stored = encodeTags(tags);
  if (stored === vm.tags) return { tags };
  await hangar.db.vm.update({ where: { id: vm.id }, data: { tags: stored } });
  const event = await hangar.recorder.record({
    stream: "vm",
    vm,
    actor,
    action: "tags",
    ok: true,
    message: tags.length > 0 ? `Tags: ${tags.join(", ")}` : "Tags removed",
  });
  await announceRowChange(hangar, vm, event.id);
  return { tags };
}

/**
 * Renames VM `id` in any state (as Proxmox does): events keep the name they were recorded
 * under, and the guest takes the new hostname at its next fresh boot, from the seed
 * cloud-init reads then. A pool's waiting members keep the names the pool gave them.
 */
export async function renameVm(hangar: Hangar, input: { id: string; name: string }, actor: string) {
  const { db } = hangar;
  const vm = await db.vm.findUnique({ where: { id: input.id }, include: { pool: { select: { name: true } } } });
  if (!vm) throw new HangarError("NOT_FOUND", `No VM with id "${input.id}"; it may have been deleted.`);
  if (vm.name === input.name) return getVm(hangar, vm.id);
  if (vm.pool && !vm.acquiredAt) {
    throw new HangarError("INVALID_INPUT", `VM "${vm.name}" waits in pool "${vm.pool.name}", which names its members; acquire it first.`);
  }
  if (await db.vm.findUnique({ where: { name: input.name }, select: { id: true } })) {
    throw new HangarError("ALREADY_EXISTS", `A VM named "${input.name}" already exists; pick another name.`);
  }
  // A rename lost in a race with another is ALREADY_EXISTS too (errors.ts, fromDatabaseError).
  await db.vm.update({ where: { id: vm.id }, data: { name: input.name } });
  const event = await hangar.recorder.record({
    stream: "vm",
    vm: { id: vm.id, name: input.name },
    actor,
    action: "rename",
    ok: true,
    message: `Renamed from ${vm.name}; the guest takes the new hostname at its next boot`,
  });
  // Open lists show the new name; the state is read again, as an action may have moved it meanwhile.
  const renamed = await getVm(hangar, vm.id);
  if (isState(renamed.state)) await hangar.bus.publish({ vmId: vm.id, vmName: input.name, state: renamed.state, eventId: event.id });
  return renamed;
}

/**
 * Runs a command in the VM over SSH (seed: Exec) as the image's login user, or as root
 * through `sudo -n` with asRoot; output capped at 1 MiB each, flagged when cut. A VM that is
 * still booting is waited for within the same timeoutSec.
 */
export async function execInVm(hangar: Hangar, input: { id: string; command: string[]; timeoutSec: number; asRoot?: boolean }, actor: string) {
  const deadline = Date.now() + input.timeoutSec * 1000;
  const vm = await readyVm(hangar, input.id, input.timeoutSec * 1000);
  const driver = hangar.driverFor(vm.id);
  const { privateKeyFile } = await driver.identity();
  // Every reader of the VM reads its events: the program is named, its arguments (which may
  // carry secrets) are not.
  const ran = `Ran ${JSON.stringify(path.posix.basename(input.command[0] ?? ""))} as ${input.asRoot ? "root" : vm.loginUser}`;
  const record = (ok: boolean, outcome: string) =>
    hangar.recorder.record({ stream: "vm", vm: { id: vm.id, name: vm.name }, actor, action: "exec", ok, message: `${ran}: ${outcome}`, live: true });
  try {
    const result = await driver.shell(input.command, vm.sshPort, privateKeyFile, {
      user: vm.loginUser,
      asRoot: input.asRoot,
      timeoutMs: Math.max(deadline - Date.now(), 1000),
      maxOutputBytes: 1024 * 1024,
    });
    await record(true, `exit ${result.exitCode}`);
    return result;
  } catch (error) {
    if (error instanceof CommandTimeoutError) {
      await record(false, `ended after ${input.timeoutSec} s`);
      throw new HangarError(
        "TIMEOUT",
        `The command in VM "${vm.name}" did not finish within ${input.timeoutSec} s and was ended; give it a larger timeoutSec.`,
        { cause: error },
      );
    }
    if (await stoppedMeanwhile(hangar, vm.id, error)) {
      throw new HangarError("NOT_RUNNING", `VM "${vm.name}" stopped before the command finished; start it and run the command again.`, { cause: error });
    }
    throw new HangarError("DRIVER_FAILED", `Running the command in VM "${vm.name}" failed: ${errorMessage(error)}`, { cause: error });
  }
}

/**
 * Adds the caller's own SSH keys (Account page) to a running VM's login user: a VM created
 * before a key was added, or owned by someone else the caller may control, does not have it,
 * and cloud-init gives keys only at a VM's first boot. Keys already there are not added again.
 */
export async function addKeysToVm(hangar: Hangar, input: { id: string }, userId: string, actor: string) {
  const keys = await authorizedKeysOf(hangar.db, userId);
  if (keys.length === 0) {
    throw new HangarError("INVALID_INPUT", "Your account has no SSH keys: add one on the Account page (or with `hangar key add`) first.");
  }
  const vm = await readyVm(hangar, input.id, 60_000);
  const driver = hangar.driverFor(vm.id);
  const { privateKeyFile } = await driver.identity();
  let result;
  try {
    result = await driver.shell([...INSTALL_KEYS_COMMAND], vm.sshPort, privateKeyFile, {
      user: vm.loginUser,
      input: `${keys.join("\n")}\n`,
      timeoutMs: 30_000,
    });
  } catch (error) {
    if (await stoppedMeanwhile(hangar, vm.id, error))
      throw new HangarError("NOT_RUNNING", `VM "${vm.name}" stopped before your keys were added; start it and try again.`, { cause: error });
    throw new HangarError("DRIVER_FAILED", `Adding your SSH keys to VM "${vm.name}" failed: ${errorMessage(error)}`, { cause: error });
  }
  const added = /^\d+$/.test(result.stdout.trim()) ? Number(result.stdout.trim()) : undefined;
  if (result.exitCode !== 0 || added === undefined) {
    throw new HangarError("DRIVER_FAILED", `Adding your SSH keys to VM "${vm.name}" failed: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
  }
  const owned = `${actor}'s ${keys.length} SSH key${keys.length === 1 ? "" : "s"}`;
  const message = added === 0 ? `The login user ${vm.loginUser} already had ${owned}` : `Added ${added} of ${owned} to the login user ${vm.loginUser}`;
  await hangar.recorder.record({ stream: "vm", vm: { id: vm.id, name: vm.name }, actor, action: "ssh-keys", ok: true, message, live: true });
  return { added, keys: keys.length, user: vm.loginUser };
}

/**
 * Copies a host directory or file, from under the sync root, into the VM with rsync (seed:
 * Sync). Files are written as the image's login user; with asRoot, or a chown (which only root
 * may do), the guest's rsync runs through `sudo -n` (root-owned targets such as /etc or /opt).
 */
export async function syncToVm(
  hangar: Hangar,
  input: { id: string; from: string; to: string; excludes?: string[]; chown?: string; asRoot?: boolean },
  actor: string,
) {
  const root = await realpath(hangar.env.syncRoot).catch(() => undefined);
  // Host paths are the admin's to know: messages name the setting, not the directory.
  if (!root)
    throw new HangarError("INVALID_INPUT", "The sync root (HANGAR_SYNC_ROOT) does not exist on this host; an admin must create it and put the files there.");
  const from = await realpath(path.resolve(root, input.from)).catch(() => undefined);
  if (!from || (from !== root && !from.startsWith(`${root}${path.sep}`))) {
    throw new HangarError("INVALID_INPUT", "from must name an existing file or directory under the sync root.");
  }
  const vm = await readyVm(hangar, input.id, SYNC_READY_WAIT_MS);
  const driver = hangar.driverFor(vm.id);
  const { privateKeyFile } = await driver.identity();
  try {
    // A trailing slash keeps rsync's meaning: the directory's contents, not the directory.
    const source = input.from.endsWith("/") ? `${from}/` : from;
    await driver.sync(source, input.to, input.chown, input.excludes ?? [], vm.sshPort, privateKeyFile, { user: vm.loginUser, asRoot: input.asRoot });
  } catch (error) {
    if (await stoppedMeanwhile(hangar, vm.id, error)) {
      throw new HangarError("NOT_RUNNING", `VM "${vm.name}" stopped before the files were copied; start it and sync again.`, { cause: error });
    }
    throw new HangarError("DRIVER_FAILED", `Syncing into VM "${vm.name}" failed: ${userMessage(error)}`, { cause: error });
  }
  const as = input.asRoot || input.chown ? "root" : vm.loginUser;
  await hangar.recorder.record({
    stream: "vm",
    vm: { id: vm.id, name: vm.name },
    actor,
    action: "sync",
    ok: true,
    message: `Copied ${input.from} into ${input.to} as ${as}`,
    live: true,
  });
  return { from: input.from, to: input.to };
}
