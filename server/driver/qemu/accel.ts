/**
 * Which accelerator to use. /dev/kvm can exist and open and still hang every guest (seen
 * on paravirtualised hosts), so KVM is used only when a probe boots a kernel with it: the
 * kernel alone, watching the serial port for "Linux version" for a few seconds. The result
 * is kept per host boot in the state directory. HANGAR_ACCEL=kvm|tcg overrides.
 */
import { z } from "zod";
import { constants } from "node:fs";
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import type { Accel } from "./args.ts";
import { qemuRunAs } from "./manager.ts";

const PROBE_TIMEOUT_MS = 6000;

/** What the probe left in the state directory: the decision, for this host boot. */
const probeCache = z.object({ bootId: z.string(), decision: z.object({ accel: z.enum(["kvm", "tcg"]), reason: z.string() }) });

export interface AccelDecision {
  accel: Accel;
  reason: string;
}

/** `forced`: the HANGAR_ACCEL setting (env.ts checks it is kvm or tcg). */
export async function chooseAccel(
  stateDir: string,
  probeKernel: string | undefined,
  { qemuUser, forced }: { qemuUser?: string; forced?: Accel } = {},
): Promise<AccelDecision> {
  if (forced) return { accel: forced, reason: "HANGAR_ACCEL" };
  try {
    await access("/dev/kvm", constants.R_OK | constants.W_OK);
  } catch {
    return { accel: "tcg", reason: "/dev/kvm is not usable" };
  }
  if (!probeKernel) return { accel: "tcg", reason: "no kernel to probe KVM with" };

  const cacheFile = path.join(stateDir, "accel-probe.json");
  const bootId = (await readFile("/proc/sys/kernel/random/boot_id", "utf8").catch(() => "")).trim();
  const cached = await readFile(cacheFile, "utf8").then(
    (text) => probeCache.safeParse(JSON.parse(text)),
    () => undefined,
  );
  if (cached?.success && cached.data.bootId === bootId) return cached.data.decision;

  // Without the unprivileged user the probe does not run: qemu never runs as root.
  const runAs = await qemuRunAs(qemuUser).catch(() => null);
  if (runAs === null) return { accel: "tcg", reason: "no unprivileged user to run the KVM probe as" };
  const decision = (await kvmBootsKernel(probeKernel, runAs))
    ? { accel: "kvm" as const, reason: "a probe booted a kernel with KVM" }
    : { accel: "tcg" as const, reason: "a probe with KVM printed nothing: /dev/kvm hangs guests here" };
  await mkdir(stateDir, { recursive: true });
  await writeFile(cacheFile, JSON.stringify({ bootId, decision }));
  return decision;
}

async function kvmBootsKernel(kernel: string, runAs: string | undefined): Promise<boolean> {
  const child = execa(
    "qemu-system-x86_64",
    [
      "-accel",
      "kvm",
      "-cpu",
      "host",
      "-m",
      "128M",
      "-nodefaults",
      "-no-user-config",
      "-display",
      "none",
      "-serial",
      "stdio",
      "-no-reboot",
      "-kernel",
      kernel,
      "-append",
      "console=ttyS0 panic=-1",
      ...(runAs ? ["-runas", runAs] : []),
    ],
    { reject: false, stdin: "ignore", timeout: PROBE_TIMEOUT_MS },
  );
  let seen = false;
  let tail = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    tail = (tail + chunk.toString("latin1")).slice(-4096);
    if (!seen && tail.includes("Linux version")) {
      seen = true;
      child.kill("SIGKILL");
    }
  });
  await child;
  return seen;
}
