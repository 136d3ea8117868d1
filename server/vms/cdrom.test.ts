// An ISO in the CD-ROM drive boots a VM whose disk is empty (an installer), on real qemu.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callerFor, createTestHangar, tinyImage, type TestHangar } from "../testing/fixtures.ts";

const BOOTED = "hangar: booted from the CD-ROM";

/**
 * An El Torito boot image (no emulation) that prints BOOTED on the first serial port and
 * halts: 16-bit code, position-independent (DS = CS, the message found through a call).
 */
function bootSector(): Buffer {
  const code = [
    0xfa, // cli
    0x0e,
    0x1f, // push cs; pop ds
    0xba,
    0xf8,
    0x03, // mov dx, 0x3f8
    0xe8,
    0x00,
    0x00, // call next
    0x5e, // next: pop si
    0x83,
    0xc6,
    0x0f, // add si, msg - next
    0xac, // loop: lodsb
    0x84,
    0xc0, // test al, al
    0x74,
    0x03, // jz done
    0xee, // out dx, al
    0xeb,
    0xf8, // jmp loop
    0xf4, // done: hlt
    0xeb,
    0xfd, // jmp done
  ];
  const sector = Buffer.alloc(2048);
  Buffer.from([...code, ...Buffer.from(`${BOOTED}\r\n`), 0]).copy(sector);
  return sector;
}

let t: TestHangar;
let api: Awaited<ReturnType<typeof callerFor>>;

beforeAll(async () => {
  t = await createTestHangar();
  api = await callerFor(t.hangar);
});

afterAll(async () => {
  for (const vm of await t.hangar.db.vm.findMany()) await t.hangar.driverFor(vm.id).kill();
  await t.cleanup();
});

describe("CD-ROM", () => {
  it("boots an installer ISO when the disk is empty, and refuses images that are not ISOs", async () => {
    const work = path.join(t.env.imagesDir, "build");
    mkdirSync(path.join(work, "cd"), { recursive: true });
    writeFileSync(path.join(work, "cd", "boot.img"), bootSector());
    await execa("genisoimage", [
      "-quiet",
      "-V",
      "INSTALLER",
      "-b",
      "boot.img",
      "-no-emul-boot",
      "-boot-load-size",
      "4",
      "-o",
      path.join(work, "installer.iso"),
      "--",
      path.join(work, "cd"),
    ]);
    await execa("qemu-img", ["create", "-q", "-f", "qcow2", "--", path.join(work, "empty.qcow2"), "1G"]);
    const iso = await api.image.import({ name: "installer", path: "build/installer.iso" });
    const empty = await api.image.import({ name: "empty", path: "build/empty.qcow2" });

    const vm = await api.vm.create({ name: "install", imageId: empty.id, cdromImageId: iso.id, cpus: 1, memoryMiB: 128 });
    expect(vm.cdromImage).toEqual({ id: iso.id, name: "installer" });
    await api.vm.start({ id: vm.id });
    const driver = t.hangar.driverFor(vm.id);
    await expect.poll(() => driver.serialTail(4096), { timeout: 60_000 }).toContain(BOOTED);

    // A clone keeps the CD in its drive; a VM without one boots no CD.
    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
    const clone = await api.vm.clone({ id: vm.id, name: "install-2" });
    expect(clone.cdromImage).toEqual({ id: iso.id, name: "installer" });
    // The ISO cannot be removed from under the VMs that have it in their drive.
    await expect(t.hangar.db.image.delete({ where: { id: iso.id } })).rejects.toThrow();

    const tiny = await tinyImage(t.hangar);
    await expect(api.vm.create({ name: "bad-cd", imageId: empty.id, cdromImageId: tiny.id, cpus: 1, memoryMiB: 128 })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: 'Image "hangar-tiny" is not an ISO image, so it cannot go in the CD-ROM drive.',
    });
    await expect(api.vm.create({ name: "no-cd", imageId: empty.id, cdromImageId: "nosuchimage", cpus: 1, memoryMiB: 128 })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    expect(await t.hangar.db.vm.count({ where: { name: { in: ["bad-cd", "no-cd"] } } })).toBe(0);
  });
});
