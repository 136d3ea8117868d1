/**
 * Start-to-ready: through Hangar (vm.start via the lifecycle, cidata, daemonized qemu, QMP)
 * vs the same guest started by a bare qemu command, measured in the same run with the same
 * probe. Two guests:
 * - tiny: the hangar-tiny kernel, ready when SSH answers;
 * - debian: the Debian 12 cloud guest (scripts/build-debian-guest.sh) through UEFI, ready when
 *   Debian's cloud-init has finished (Hangar: `vm.wait({for: "ready"})`; bare: the same
 *   `cloud-init status` probe over SSH as Hangar's account, from the same cidata, with the
 *   argv Hangar's own builder makes).
 * Prints both medians and the ratio for each (goal: at most 1.10).
 *
 *   npx tsx bench/boot.ts [runs] [tiny,debian]   (HANGAR_ACCEL=kvm|tcg to force an accelerator)
 */
import { link, mkdir } from "node:fs/promises";
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { TRPCError } from "@trpc/server";
import { execa } from "execa";
import { buildQemuArgs } from "../server/driver/qemu/args.ts";
import { chooseAccel } from "../server/driver/qemu/accel.ts";
import { writeCidataIso } from "../server/driver/qemu/cidata.ts";
import { findOvmf } from "../server/driver/qemu/firmware.ts";
import { MACHINE_FAMILY, qemuRunAs, resolveMachineType, shellQuote, sshOptions } from "../server/driver/qemu/manager.ts";
import { vmFiles } from "../server/driver/qemu/paths.ts";
import { greetsWithSshBanner, isPortFree } from "../server/driver/qemu/ports.ts";
import { generateSshKeyPair } from "../server/driver/qemu/sshkey.ts";
import { READY_PROBE, parseReadiness } from "../server/vms/readiness.ts";
import { buildDebianGuest, debianGuestDisk } from "../server/testing/debian.ts";
import { guestDir, median, runBench, waitForSsh, type Bench } from "./setup.ts";

const runs = Number(process.argv[2] ?? 5);
const guests = (process.argv[3] ?? "tiny,debian").split(",");
const kernel = path.join(guestDir, "vmlinuz");
const initrd = path.join(guestDir, "initrd.img");
const cmdline = readFileSync(path.join(guestDir, "cmdline"), "utf8").trim();

async function freePort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    if (await isPortFree(port)) return port;
  }
}

async function bareQemu(work: string, accel: string, run: number): Promise<number> {
  const dir = path.join(work, `bare-${run}`);
  await execa("mkdir", ["-p", "--", dir]);
  const keys = generateSshKeyPair("bench");
  const key = path.join(dir, "key");
  writeFileSync(key, keys.privateKey, { mode: 0o600 });
  await execa("qemu-img", ["create", "-q", "-f", "qcow2", "-b", path.join(guestDir, "disk.qcow2"), "-F", "qcow2", "--", path.join(dir, "disk.qcow2")]);
  await writeCidataIso(path.join(dir, "cidata.iso"), { instanceId: `bare-${run}`, hostname: "bare", sshAuthorizedKeys: [keys.publicKey], userData: "" });
  const port = await freePort();
  const started = performance.now();
  await execa("qemu-system-x86_64", [
    "-machine",
    `q35,accel=${accel}`,
    "-cpu",
    accel === "kvm" ? "host" : "max",
    "-m",
    "256M",
    "-smp",
    "1",
    "-nodefaults",
    "-display",
    "none",
    "-daemonize",
    "-pidfile",
    path.join(dir, "pid"),
    "-serial",
    `file:${path.join(dir, "serial.log")}`,
    "-kernel",
    kernel,
    "-initrd",
    initrd,
    "-append",
    cmdline,
    "-drive",
    `file=${path.join(dir, "disk.qcow2")},format=qcow2,if=virtio`,
    "-drive",
    `file=${path.join(dir, "cidata.iso")},format=raw,if=virtio,readonly=on`,
    "-netdev",
    `user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:${port}-:22`,
    "-device",
    "virtio-net-pci,netdev=net0",
  ]);
  await waitForSsh(port, key);
  const elapsed = performance.now() - started;
  process.kill(Number(readFileSync(path.join(dir, "pid"), "utf8")), "SIGKILL");
  return elapsed;
}

async function tinyBench({ work, hangar, api, imageId }: Bench): Promise<void> {
  const decision = await chooseAccel(hangar.env.stateDir, kernel, { forced: hangar.env.HANGAR_ACCEL });
  console.log(`tiny guest: accelerator ${decision.accel} (${decision.reason}); ${runs} runs each, ${os.cpus().length} cores`);

  const hangarTimes: number[] = [];
  const bareTimes: number[] = [];
  for (let run = 0; run < runs; run++) {
    // Alternate to spread any drift in machine load over both.
    bareTimes.push(await bareQemu(work, decision.accel, run));
    const vm = await api.vm.create({ name: `bench-${run}`, imageId, cpus: 1, memoryMiB: 256 });
    const { privateKeyFile } = await hangar.driverFor(vm.id).identity();
    const started = performance.now();
    const running = await api.vm.start({ id: vm.id });
    await waitForSsh(running.sshPort ?? 0, privateKeyFile);
    hangarTimes.push(performance.now() - started);
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    await api.vm.delete({ id: vm.id });
    console.log(`run ${run + 1}: bare ${Math.round(bareTimes[run] ?? 0)} ms, hangar ${Math.round(hangarTimes[run] ?? 0)} ms`);
  }
  const bare = median(bareTimes);
  const ours = median(hangarTimes);
  console.log(`tiny guest start-to-SSH median: bare qemu ${Math.round(bare)} ms, hangar ${Math.round(ours)} ms`);
  console.log(`tiny guest ratio hangar/bare: ${(ours / bare).toFixed(3)} (goal <= 1.10)`);
}

const LOGIN = "hangar";
const DEBIAN = { cpus: 2, memoryMiB: 1024 } as const;

/** Polls like Hangar's readiness watch: SSH's banner, then cloud-init's status as Hangar's account. */
async function waitForCloudInit(port: number, keyFile: string): Promise<string> {
  for (;;) {
    if (await greetsWithSshBanner(port)) {
      const result = await execa(
        "ssh",
        ["-o", "ConnectTimeout=5", ...sshOptions(port, keyFile), "--", `${LOGIN}@127.0.0.1`, READY_PROBE.map(shellQuote).join(" ")],
        { reject: false, timeout: 120_000 },
      );
      if (result.exitCode === 0) {
        const readiness = parseReadiness(result.stdout);
        if (readiness.state !== "booting") return readiness.detail;
      }
    }
    await sleep(1000);
  }
}

/** The Debian guest by a bare qemu: Hangar's argv builder on a directory of its own, no Hangar around it. */
async function bareDebian(work: string, accel: "kvm" | "tcg", run: number): Promise<number> {
  const id = `bare-deb-${run}`;
  const files = vmFiles(path.join(work, "bare"), id);
  await mkdir(files.dir, { recursive: true, mode: 0o700 });
  await mkdir(files.socketDir, { recursive: true, mode: 0o700 });
  const keys = generateSshKeyPair("bench");
  const key = path.join(files.dir, "key");
  writeFileSync(key, keys.privateKey, { mode: 0o600 });
  await execa("qemu-img", ["create", "-q", "-f", "qcow2", "-b", debianGuestDisk, "-F", "qcow2", "--", files.disk]);
  const ovmf = await findOvmf();
  await execa("qemu-img", ["convert", "-q", "-f", "raw", "-O", "qcow2", "--", ovmf.varsTemplate, files.uefiVars]);
  await writeCidataIso(files.cidata, { instanceId: id, hostname: id, sshAuthorizedKeys: [keys.publicKey], userData: "" });
  const port = await freePort();
  const args = buildQemuArgs({
    id,
    files,
    accel,
    machine: await resolveMachineType(MACHINE_FAMILY),
    cpus: DEBIAN.cpus,
    memoryMiB: DEBIAN.memoryMiB,
    diskFormat: "qcow2",
    firmware: "uefi",
    uefiCode: ovmf.code,
    sshHostPort: port,
    ports: [],
    forwardAddress: "127.0.0.1",
    network: { mode: "nat" },
    monitor: false,
    runAs: await qemuRunAs(),
  });
  const started = performance.now();
  await execa("qemu-system-x86_64", args);
  const detail = await waitForCloudInit(port, key);
  const elapsed = performance.now() - started;
  process.kill(Number(readFileSync(files.pidFile, "utf8")), "SIGKILL");
  console.log(`  bare: ${detail}`);
  return elapsed;
}

async function debianBench({ work, hangar, api }: Bench): Promise<void> {
  await buildDebianGuest();
  const decision = await chooseAccel(hangar.env.stateDir, path.join(guestDir, "vmlinuz"), { forced: hangar.env.HANGAR_ACCEL });
  console.log(`debian guest (UEFI, ${DEBIAN.cpus} vCPUs, ${DEBIAN.memoryMiB} MiB): accelerator ${decision.accel} (${decision.reason}); ${runs} runs each`);
  await mkdir(hangar.env.imagesDir, { recursive: true });
  await link(debianGuestDisk, path.join(hangar.env.imagesDir, "debian-12.qcow2"));
  const image = await api.image.import({ name: "debian-12", path: "debian-12.qcow2", firmware: "uefi" });

  const hangarTimes: number[] = [];
  const bareTimes: number[] = [];
  for (let run = 0; run < runs; run++) {
    bareTimes.push(await bareDebian(work, decision.accel, run));
    const vm = await api.vm.create({ name: `bench-deb-${run}`, imageId: image.id, ...DEBIAN, network: "nat" });
    const started = performance.now();
    await api.vm.start({ id: vm.id });
    let ready: Awaited<ReturnType<typeof api.vm.wait>> | undefined;
    while (!ready) {
      ready = await api.vm.wait({ id: vm.id, for: "ready", timeoutSec: 600 }).catch((error: unknown) => {
        if (error instanceof TRPCError && error.code === "TIMEOUT") return undefined;
        throw error;
      });
    }
    hangarTimes.push(performance.now() - started);
    console.log(`  hangar: ${ready.readyDetail ?? ""}`);
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    await api.vm.delete({ id: vm.id });
    console.log(`run ${run + 1}: bare ${Math.round(bareTimes[run] ?? 0)} ms, hangar ${Math.round(hangarTimes[run] ?? 0)} ms`);
  }
  const bare = median(bareTimes);
  const ours = median(hangarTimes);
  console.log(`debian guest start-to-ready (cloud-init done) median: bare qemu ${Math.round(bare)} ms, hangar ${Math.round(ours)} ms`);
  console.log(`debian guest ratio hangar/bare: ${(ours / bare).toFixed(3)} (goal <= 1.10)`);
}

runBench(
  "boot",
  async (bench) => {
    if (guests.includes("tiny")) await tinyBench(bench);
    if (guests.includes("debian")) await debianBench(bench);
  },
  // A slow host (no KVM) can take longer than the default to finish Debian's first boot.
  { HANGAR_READY_TIMEOUT_SEC: 3600 },
);
