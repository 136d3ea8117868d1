/**
 * Start-to-SSH-ready: through Hangar (vm.start via the lifecycle, cidata, daemonized qemu,
 * QMP) vs the same tiny guest started by a bare qemu command, measured in the same run with
 * the same SSH probe. Prints both medians and the ratio (goal: at most 1.10).
 *
 *   npx tsx bench/boot.ts [runs]      (HANGAR_ACCEL=kvm|tcg to force an accelerator)
 */
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { chooseAccel } from "../server/driver/qemu/accel.ts";
import { writeCidataIso } from "../server/driver/qemu/cidata.ts";
import { isPortFree } from "../server/driver/qemu/ports.ts";
import { generateSshKeyPair } from "../server/driver/qemu/sshkey.ts";
import { guestDir, median, runBench, waitForSsh } from "./setup.ts";

const runs = Number(process.argv[2] ?? 5);
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
    "-machine", `q35,accel=${accel}`, "-cpu", accel === "kvm" ? "host" : "max", "-m", "256M", "-smp", "1",
    "-nodefaults", "-display", "none", "-daemonize", "-pidfile", path.join(dir, "pid"),
    "-serial", `file:${path.join(dir, "serial.log")}`,
    "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
    "-drive", `file=${path.join(dir, "disk.qcow2")},format=qcow2,if=virtio`,
    "-drive", `file=${path.join(dir, "cidata.iso")},format=raw,if=virtio,readonly=on`,
    "-netdev", `user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:${port}-:22`, "-device", "virtio-net-pci,netdev=net0",
  ]);
  await waitForSsh(port, key);
  const elapsed = performance.now() - started;
  process.kill(Number(readFileSync(path.join(dir, "pid"), "utf8")), "SIGKILL");
  return elapsed;
}

runBench("boot", async ({ work, hangar, api, imageId }) => {
  const decision = await chooseAccel(hangar.env.stateDir, kernel);
  console.log(`accelerator: ${decision.accel} (${decision.reason}); ${runs} runs each, ${os.cpus().length} cores`);

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
  console.log(`start-to-SSH median: bare qemu ${Math.round(bare)} ms, hangar ${Math.round(ours)} ms`);
  console.log(`ratio hangar/bare: ${(ours / bare).toFixed(3)} (goal <= 1.10)`);
});

