import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { QemuConfigError, buildQemuArgs, formatArgs, type QemuConfig } from "./args.ts";
import { vmFiles } from "./paths.ts";

const testdata = path.join(path.dirname(fileURLToPath(import.meta.url)), "testdata");

function config(overrides: Partial<QemuConfig> = {}, stateDir = "/var/lib/hangar"): QemuConfig {
  return {
    id: "cm3vm0001",
    files: vmFiles(stateDir, "cm3vm0001"),
    accel: "tcg",
    machine: "q35",
    cpus: 1,
    memoryMiB: 256,
    diskFormat: "qcow2",
    firmware: "bios",
    sshHostPort: 0,
    ports: [],
    forwardAddress: "127.0.0.1",
    network: { mode: "isolated" },
    monitor: false,
    ...overrides,
  };
}

/** Compares with testdata/<name>.argv; UPDATE_GOLDEN=1 rewrites it. */
function golden(name: string, cfg: QemuConfig) {
  const actual = formatArgs("qemu-system-x86_64", buildQemuArgs(cfg));
  const file = path.join(testdata, `${name}.argv`);
  if (process.env.UPDATE_GOLDEN) writeFileSync(file, actual);
  expect(actual).toBe(readFileSync(file, "utf8"));
}

describe("buildQemuArgs golden files", () => {
  it("firmware boot, TCG, no forwards", () => golden("firmware-tcg", config()));

  it("direct kernel boot, KVM, forwards and monitor", () =>
    golden(
      "kernel-kvm-ports",
      config({
        accel: "kvm",
        cpus: 2,
        memoryMiB: 1024,
        monitor: true,
        sshHostPort: 2222,
        ports: [
          { hostPort: 8080, guestPort: 80 },
          { hostPort: 0, guestPort: 443 },
        ],
        boot: { kernel: "/images/tiny/vmlinuz", initrd: "/images/tiny/initrd.img", cmdline: "console=ttyS0 quiet" },
      }),
    ));

  it("nat: a route and DNS out, forwards on a chosen address", () =>
    golden("network-nat", config({ network: { mode: "nat" }, forwardAddress: "0.0.0.0", sshHostPort: 2222, ports: [{ hostPort: 8080, guestPort: 80 }] })));

  it("bridge: an isolated user network for SSH plus a NIC on the host bridge", () =>
    golden("network-bridge", config({ network: { mode: "bridge", bridge: "br0" } })));

  it("bridge: gives each VM's bridged NIC its own MAC, the same at every start", () => {
    const mac = (id: string) =>
      buildQemuArgs(config({ id, network: { mode: "bridge", bridge: "br0" } })).find((arg) => arg.startsWith("virtio-net-pci,netdev=lan0"));
    expect(mac("vm-a")).toMatch(/,mac=52:54:00(:[0-9a-f]{2}){3}$/);
    expect(mac("vm-a")).toBe(mac("vm-a"));
    expect(mac("vm-a")).not.toBe(mac("vm-b"));
  });
  it("drops to an unprivileged user when Hangar runs as root, resuming a suspended VM", () =>
    golden("runas-loadvm", config({ runAs: "hangar-qemu", loadvm: "hangar-suspend" })));
  it("memory in a file, started paused (a resume that loads the device state over QMP)", () =>
    golden("memory-file-paused", config({ memoryFile: { path: "/var/lib/hangar/vms/cm3vm0001/memory.ram", mapping: "private" }, paused: true })));
  it("memory in a file, mapped shared (a boot whose suspend leaves the memory there)", () =>
    golden("memory-file-boot", config({ memoryFile: { path: "/var/lib/hangar/vms/cm3vm0001/memory.ram", mapping: "shared" } })));

  it("UEFI: OVMF's code read-only and the VM's own variable store, after the disk", () =>
    golden("uefi-tcg", config({ firmware: "uefi", uefiCode: "/usr/share/OVMF/OVMF_CODE_4M.fd", cpus: 2, memoryMiB: 1024 })));

  it("doubles commas and keeps spaces in paths inside option values", () => golden("hostile-paths", config({}, "/srv/my vms,with,commas")));

  it("an installer ISO in the CD-ROM drive, firmware boot", () => golden("cdrom-installer", config({ cdrom: "/srv/hangar/images/debian 12,netinst.raw" })));
});

describe("buildQemuArgs rejects what qemu would misread", () => {
  const cases: [string, Partial<QemuConfig>][] = [
    ["a relative state path", { files: { ...vmFiles("/x", "cm3vm0001"), disk: "disk.qcow2" } }],
    ["a path starting with a dash", { files: { ...vmFiles("/x", "cm3vm0001"), pidFile: "-daemonize" } }],
    ["a newline in a path", { files: { ...vmFiles("/x", "cm3vm0001"), qmpSocket: "/x/q\nmp.sock" } }],
    ["an id with a comma", { id: "vm,if=none" }],
    ["an id with a leading dash", { id: "-vm" }],
    ["a relative kernel", { boot: { kernel: "vmlinuz" } }],
    ["a kernel command line with a newline", { boot: { kernel: "/k", cmdline: "console=ttyS0\n-monitor stdio" } }],
    ["a guest port of 0", { ports: [{ hostPort: 0, guestPort: 0 }] }],
    ["a host port above 65535", { ports: [{ hostPort: 70000, guestPort: 80 }] }],
    ["zero CPUs", { cpus: 0 }],
    ["a machine type with a comma", { machine: "q35,accel=kvm" }],
    ["a forward address that is a host name", { forwardAddress: "localhost" }],
    ["a forward address with an option", { forwardAddress: "127.0.0.1,restrict=off" }],
    ["a bridge name with a comma", { network: { mode: "bridge", bridge: "br0,helper=/bin/sh" } }],
    ["a bridge name starting with a dash", { network: { mode: "bridge", bridge: "-br" } }],
    ["a user name with a comma", { runAs: "qemu,x" }],
    ["a user name starting with a dash", { runAs: "-daemonize" }],
    ["a relative CD-ROM image", { cdrom: "debian.iso" }],
    ["a newline in the CD-ROM image", { cdrom: "/x/a.iso\n-device VGA" }],
    ["UEFI without the firmware code", { firmware: "uefi" }],
    ["a relative UEFI firmware path", { firmware: "uefi", uefiCode: "OVMF_CODE.fd" }],
  ];
  it.each(cases)("rejects %s", (_label, overrides) => {
    expect(() => buildQemuArgs(config(overrides))).toThrow(QemuConfigError);
  });

  it("serves the display on the VM's own unix socket only, never on a TCP port", () => {
    const args = buildQemuArgs(config());
    expect(args.filter((arg) => arg === "-vnc")).toHaveLength(1);
    expect(args[args.indexOf("-vnc") + 1]).toBe("unix:/var/lib/hangar/vms/cm3vm0001/vnc.sock,share=force-shared");
    expect(args[args.indexOf("-display") + 1]).toBe("none");
  });

  it("passes a kernel command line as one argv element, commas untouched", () => {
    const args = buildQemuArgs(config({ boot: { kernel: "/k", cmdline: "a=1,b=2 c" } }));
    expect(args[args.indexOf("-append") + 1]).toBe("a=1,b=2 c");
  });
});

describe("vmFiles", () => {
  it("moves sockets to a short runtime directory when the path would not fit a unix socket", () => {
    const deep = `/${"d".repeat(120)}`;
    const files = vmFiles(deep, "cm3vm0001");
    expect(files.dir.startsWith(deep)).toBe(true);
    expect(files.socketDir.startsWith(deep)).toBe(false);
    expect(Buffer.byteLength(files.monitorSocket)).toBeLessThanOrEqual(107);
    expect(Buffer.byteLength(files.vncSocket)).toBeLessThanOrEqual(107);
    expect(vmFiles("/var/lib/hangar", "cm3vm0001").socketDir).toBe("/var/lib/hangar/vms/cm3vm0001");
  });
});
