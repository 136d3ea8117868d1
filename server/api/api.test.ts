// Bad input gets BAD_REQUEST (or the domain's code) with a sentence, and changes nothing.
import { TRPCError } from "@trpc/server";
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeDriver } from "../testing/fake-driver.ts";
import { callerFor, createTestHangar, type TestHangar } from "../testing/fixtures.ts";

let t: TestHangar;
let fake: FakeDriver;
let api: Awaited<ReturnType<typeof callerFor>>;
let imageId: string;

beforeAll(async () => {
  fake = new FakeDriver();
  t = await createTestHangar({ driverFor: fake.managerFor });
  api = await callerFor(t.hangar);
  imageId = (await t.hangar.db.image.create({ data: { name: "base", path: "/b.qcow2" } })).id;
});
afterAll(() => t.cleanup());

async function refusal(promise: Promise<unknown>) {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (!(error instanceof TRPCError)) throw new Error(`expected a TRPCError, got ${String(error)}`);
  return { code: error.code, message: error.message };
}

describe("vm.create input", () => {
  const good = { name: "ok-name", cpus: 1, memoryMiB: 256 };
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["an upper-case name", { name: "Bad_Name" }, /DNS labels/],
    ["a name starting with a dash", { name: "-vm" }, /DNS labels/],
    ["a name with a comma", { name: "a,b" }, /DNS labels/],
    ["a 64-character name", { name: "a".repeat(64) }, /DNS labels/],
    ["zero CPUs", { cpus: 0 }, /at least 1 CPU/],
    ["too little memory", { memoryMiB: 16 }, /at least 64 MiB/],
    ["a privileged host port", { ports: [{ hostPort: 80, guestPort: 80 }] }, /1024 and above/],
    ["forwarding SSH again", { ports: [{ hostPort: 0, guestPort: 22 }] }, /always forwarded/],
    ["a guest port twice", { ports: [{ hostPort: 0, guestPort: 80 }, { hostPort: 0, guestPort: 80 }] }, /forwarded once/],
  ];
  it.each(cases)("refuses %s with BAD_REQUEST and a sentence", async (_label, change, message) => {
    const result = await refusal(api.vm.create({ ...good, imageId, ...change } as Parameters<typeof api.vm.create>[0]));
    expect(result.code).toBe("BAD_REQUEST");
    expect(result.message).toMatch(message);
    expect(await t.hangar.db.vm.count()).toBe(0);
    expect(fake.vms.size).toBe(0);
  });

  it("refuses an unknown image with NOT_FOUND", async () => {
    expect(await refusal(api.vm.create({ ...good, imageId: "nosuchimage" }))).toEqual({
      code: "NOT_FOUND",
      message: 'No image with id "nosuchimage"; pick one from the Images page.',
    });
  });

  it("refuses a duplicate name with CONFLICT", async () => {
    await api.vm.create({ ...good, name: "twin", imageId });
    expect(await refusal(api.vm.create({ ...good, name: "twin", imageId }))).toEqual({
      code: "CONFLICT",
      message: 'A VM named "twin" already exists; pick another name.',
    });
  });

  it("refuses actions on a missing VM with NOT_FOUND and an invalid transition with CONFLICT", async () => {
    expect((await refusal(api.vm.start({ id: "nosuchvm" }))).code).toBe("NOT_FOUND");
    const vm = await api.vm.create({ ...good, name: "runner", imageId });
    await api.vm.start({ id: vm.id });
    const again = await refusal(api.vm.start({ id: vm.id }));
    expect(again).toEqual({ code: "CONFLICT", message: 'Cannot start VM "runner" while it is Running. Allowed now: Stop, Suspend.' });
    expect((await refusal(api.vm.stop({ id: vm.id, timeoutSec: -1 }))).code).toBe("BAD_REQUEST");
  });
});

describe("image.import input", () => {
  it("refuses a path outside the images directory", async () => {
    const result = await refusal(api.image.import({ name: "etc", path: "/etc/passwd" }));
    expect(result.code).toBe("BAD_REQUEST");
    expect(result.message).toMatch(/must be a file under .*images/);
  });

  it("refuses ../ escapes, missing files, both path and url, and non-http URLs", async () => {
    mkdirSync(t.env.imagesDir, { recursive: true });
    writeFileSync(path.join(t.env.stateDir, "outside.qcow2"), "not an image");
    expect((await refusal(api.image.import({ name: "up", path: "../outside.qcow2" }))).message).toMatch(/must be a file under/);
    expect((await refusal(api.image.import({ name: "none", path: "missing.qcow2" }))).message).toMatch(/does not exist/);
    expect((await refusal(api.image.import({ name: "both", path: "a", url: "https://example.invalid/a" }))).code).toBe("BAD_REQUEST");
    expect((await refusal(api.image.import({ name: "ftp", url: "ftp://example.invalid/a.qcow2" }))).message).toMatch(/http and https/);
    expect(await t.hangar.db.image.count({ where: { name: { in: ["up", "none", "both", "ftp"] } } })).toBe(0);
  });

  it("imports a raw file under the images directory, hashing it, and checks a given sha256", async () => {
    const file = path.join(t.env.imagesDir, "blank.img");
    writeFileSync(file, Buffer.alloc(1024 * 1024));
    const wrong = await refusal(api.image.import({ name: "blank-bad", path: "blank.img", sha256: "0".repeat(64) }));
    expect(wrong.message).toMatch(/sha256 is [0-9a-f]{64}, not 0{64}/);
    const image = await api.image.import({ name: "blank", path: "blank.img" });
    expect(image).toMatchObject({ format: "raw", status: "ready", sizeBytes: 1024n * 1024n, firmware: "bios" });
    expect(image.sha256).toBe("30e14955ebf1352266dc2ff8067e68104607e750abb9d3b36582b8af909fcb58");
    expect(image.path).toBe(path.join(t.env.imagesDir, `${image.sha256}.raw`));
  });

  it("takes the firmware given over the one detected, and refuses an unknown one", async () => {
    writeFileSync(path.join(t.env.imagesDir, "blank.img"), Buffer.alloc(1024 * 1024));
    expect(await api.image.import({ name: "blank-uefi", path: "blank.img", firmware: "uefi" })).toMatchObject({ firmware: "uefi" });
    // @ts-expect-error: not a firmware Hangar knows
    const refused = await refusal(api.image.import({ name: "blank-coreboot", path: "blank.img", firmware: "coreboot" }));
    expect(refused.code).toBe("BAD_REQUEST");
    expect(refused.message).toMatch(/firmware must be/);
  });
});

describe("image.import from a URL", () => {
  it("streams the file to disk, hashes it and becomes ready; a wrong sum fails the import", async () => {
    const body = Buffer.alloc(6 * 1024 * 1024, 7);
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { "content-length": body.length });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/disk.img`;
    try {
      const started = await api.image.import({ name: "from-url", url });
      expect(started.status).toBe("importing");
      const bad = await api.image.import({ name: "from-url-bad", url, sha256: "f".repeat(64) });
      const settle = async (id: string) => {
        for (let i = 0; i < 600; i++) {
          const image = await t.hangar.db.image.findUniqueOrThrow({ where: { id } });
          if (image.status !== "importing") return image;
          await sleep(50);
        }
        throw new Error("import did not finish");
      };
      const done = await settle(started.id);
      expect(done).toMatchObject({ status: "ready", format: "raw", progress: BigInt(body.length), sha256: createHash("sha256").update(body).digest("hex") });
      const failed = await settle(bad.id);
      expect(failed.status).toBe("failed");
      expect(failed.error).toMatch(/expected f{64}/);
    } finally {
      server.close();
    }
  });
});
