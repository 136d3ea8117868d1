// The sampler and /metrics on a real qemu running the tiny guest: a guest kept busy shows it
// through the API, and /metrics parses and names the VM.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createToken } from "../auth/tokens.ts";
import { callerFor, createTestHangar, tinyImage, type TestHangar } from "../testing/fixtures.ts";
import { handleMetrics } from "./http.ts";

const MiB = 1024 * 1024;
let t: TestHangar;
let stopSampler: () => Promise<void> = async () => undefined;
let server: http.Server;
let url: string;

beforeAll(async () => {
  t = await createTestHangar({ settings: { HANGAR_SAMPLE_INTERVAL_SEC: 1 } });
  stopSampler = t.hangar.metrics.start();
  server = http.createServer((req, res) => void handleMetrics(t.hangar.db, t.hangar.metrics, req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
});
afterAll(async () => {
  await stopSampler();
  server.close();
  for (const vm of await t.hangar.db.vm.findMany()) await t.hangar.driverFor(vm.id).kill();
  await t.cleanup();
});

/** Prometheus text format: `name{label="value",…} number` lines, comments, blank lines. */
function parseExposition(text: string) {
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match?.[1] || !match[3]) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] ?? ""] = pair[2] ?? "";
    const value = match[3] === "+Inf" ? Infinity : Number(match[3]);
    if (Number.isNaN(value)) throw new Error(`not a number: ${line}`);
    samples.push({ name: match[1], labels, value });
  }
  return samples;
}

describe("metrics of a real guest", () => {
  it("a guest running `yes > /dev/null` shows CPU above 50 % through the API, and /metrics names it", async () => {
    const api = await callerFor(t.hangar);
    const image = await tinyImage(t.hangar);
    const vm = await api.vm.create({ name: "busy", imageId: image.id, cpus: 1, memoryMiB: 256 });
    await api.vm.start({ id: vm.id });
    await api.vm.wait({ id: vm.id, for: "ready", timeoutSec: 120 });
    const exec = await api.vm.exec({ id: vm.id, command: ["sh", "-c", "setsid yes > /dev/null 2>&1 < /dev/null &"], timeoutSec: 30 });
    expect(exec.exitCode).toBe(0);
    // In its own session, so the SSH session's end does not take it along.
    expect((await api.vm.exec({ id: vm.id, command: ["pidof", "yes"], timeoutSec: 30 })).stdout.trim()).toMatch(/^\d+$/);

    // The promise: within 15 s.
    await expect
      .poll(async () => (await api.metrics.vm({ id: vm.id, range: "1h" })).points.at(-1)?.cpuPercent ?? 0, { timeout: 15_000, interval: 500 })
      .toBeGreaterThan(50);
    const { points } = await api.metrics.vm({ id: vm.id, range: "1h" });
    expect(points.at(-1)?.rssBytes).toBeGreaterThan(16 * 1024 * 1024);
    // The guest's own count, from its balloon driver: some of its 256 MiB used, not all.
    await expect
      .poll(async () => (await api.metrics.vm({ id: vm.id, range: "1h" })).points.at(-1)?.guestMemUsedBytes ?? null, { timeout: 15_000, interval: 500 })
      .toBeGreaterThan(4 * MiB);
    const guest = (await api.metrics.vm({ id: vm.id, range: "1h" })).points.at(-1);
    expect(guest?.guestMemTotalBytes).toBeGreaterThan(128 * MiB);
    expect(guest?.guestMemTotalBytes).toBeLessThanOrEqual(256 * MiB);
    expect(guest?.guestMemUsedBytes).toBeLessThan(guest?.guestMemTotalBytes ?? 0);
    const row = (await api.vm.list()).items.find((r) => r.id === vm.id);
    expect(row?.usage?.cpuPercent).toBeGreaterThan(50);

    // /metrics: refused without an admin's token, then parsed.
    expect((await fetch(url)).status).toBe(401);
    const operator = await callerFor(t.hangar, "operator");
    const operatorToken = await operator.token.create({ name: "scrape" });
    expect((await fetch(url, { headers: { authorization: `Bearer ${operatorToken.token}` } })).status).toBe(403);
    const admin = await t.hangar.db.user.findUniqueOrThrow({ where: { email: "admin@test.hangar" } });
    const { token } = await createToken(t.hangar.db, admin.id, { name: "prometheus" });
    const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/plain");
    const samples = parseExposition(await response.text());
    const rss = samples.find((s) => s.name === "hangar_vm_memory_rss_bytes" && s.labels.id === vm.id);
    expect(rss?.labels).toMatchObject({ name: "busy", owner: "admin@test.hangar", host: t.hangar.hosts.name });
    expect(rss?.value).toBeGreaterThan(0);
    expect(samples.find((s) => s.name === "hangar_vm_cpu_seconds_total" && s.labels.id === vm.id)?.value).toBeGreaterThan(0);
    expect(samples.find((s) => s.name === "hangar_vm_guest_memory_used_bytes" && s.labels.id === vm.id)?.value).toBeGreaterThan(0);
    expect(samples.find((s) => s.name === "hangar_vms" && s.labels.state === "Running")?.value).toBe(1);
    expect(samples.some((s) => s.name === "hangar_lifecycle_duration_seconds_count" && s.labels.action === "start" && s.labels.outcome === "ok")).toBe(true);
    expect(samples.some((s) => s.name === "hangar_trpc_request_duration_seconds_count" && s.labels.procedure === "vm.start")).toBe(true);

    // The start's event carries the request id of the call that caused it.
    const start = await t.hangar.db.event.findFirstOrThrow({ where: { vmId: vm.id, action: "start" } });
    expect(start.requestId).toMatch(/^[0-9a-f-]{36}$/);

    await api.vm.stop({ id: vm.id, timeoutSec: 0 });
  });
});
