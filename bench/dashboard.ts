/**
 * The dashboard with 1,000 VMs, in Debian's Chromium against a real Hangar server started
 * for the run (production build: `npx next build` first). The VM rows are written straight
 * into the database before the server starts; one real tiny VM is started and stopped to
 * make changes. Prints:
 *   - first rows: navigation to the frame that paints the first row (median of fresh tabs;
 *     goal < 1 s), and to when that row takes clicks; the rows and elements in the page
 *     against the inventory's size, and how many
 *     vm.list requests each fresh tab made until a second after its live stream started;
 *   - route prefetches fired by scrolling the whole table (goal 0);
 *   - with 8 tabs of one browser open, the time from the Running event to the change
 *     showing in every tab (goal: the slowest tab within 500 ms);
 *   - bytes received per change per tab, WebSocket frames and HTTP bodies as Chromium
 *     counts them through CDP (goal < 5 KB);
 *   - server CPU per change with 8 tabs against 1 tab, the same start/stop cycles in one run
 *     (goal: ratio at most 2).
 *
 *   npx tsx bench/dashboard.ts [cycles]     (DATABASE_URL=postgres://… for PostgreSQL)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext, type CDPSession, type Page } from "playwright-core";
import { createTRPCClient, httpLink } from "@trpc/client";
import superjson from "superjson";
import type { AppRouter } from "../server/api/root.ts";
import { addUser } from "../server/auth/users.ts";
import { freePort } from "../server/testing/processes.ts";
import { guestDir, median, runBench } from "./setup.ts";

const cycles = Number(process.argv[2] ?? 3);
const VMS = 1000;
const TABS = 8;
const FIRST_ROW_SAMPLES = 5;
const ADMIN = { email: "bench-admin@hangar.local", password: "bench admin password" };
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these. */
const TICKS_PER_SECOND = 100;

/** CPU seconds the process has used (user + system, all threads). */
function cpuSeconds(pid: number): number {
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

async function waitForServer(baseURL: string, server: ChildProcess): Promise<void> {
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`the server exited with ${server.exitCode}`);
    const up = await fetch(`${baseURL}/sign-in`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return;
    await sleep(250);
  }
  throw new Error("the server did not answer within 180 s");
}

async function signIn(baseURL: string): Promise<{ name: string; value: string }[]> {
  const response = await fetch(`${baseURL}/api/auth/sign-in/email`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: baseURL },
    body: JSON.stringify(ADMIN),
  });
  if (!response.ok) throw new Error(`signing in failed: ${response.status}`);
  return response.headers.getSetCookie().map((cookie) => {
    const [pair = ""] = cookie.split(";");
    const at = pair.indexOf("=");
    return { name: pair.slice(0, at), value: pair.slice(at + 1) };
  });
}

/** Bytes a tab received: WebSocket frame payloads and HTTP bodies as sent (encoded). */
class Traffic {
  ws = 0;
  frames = 0;
  http = 0;
  requests = 0;
  private constructor() {}
  static async attach(context: BrowserContext, page: Page): Promise<Traffic> {
    const traffic = new Traffic();
    const cdp: CDPSession = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    cdp.on("Network.webSocketFrameReceived", (event) => {
      traffic.ws += Buffer.byteLength(event.response.payloadData, event.response.opcode === 2 ? "base64" : "utf8");
      traffic.frames += 1;
    });
    cdp.on("Network.requestWillBeSent", () => (traffic.requests += 1));
    cdp.on("Network.loadingFinished", (event) => (traffic.http += event.encodedDataLength));
    return traffic;
  }
  total(): number {
    return this.ws + this.http;
  }
  reset(): void {
    this.ws = this.frames = this.http = this.requests = 0;
  }
}

/**
 * In the tab: the wall-clock time the VM's row first shows `state` (Date.now()). A string,
 * not a function: the bench's compiler would wrap named functions in a helper the page lacks.
 */
function watchState(page: Page, vmId: string, state: string): Promise<number> {
  const selector = JSON.stringify(`[data-testid="vm-row"][data-vm-id="${vmId}"] [data-testid="vm-state"]`);
  return page.evaluate<number>(`new Promise((resolve) => {
    const shown = () => document.querySelector(${selector})?.textContent === ${JSON.stringify(state)};
    if (shown()) return resolve(Date.now());
    const observer = new MutationObserver(() => {
      if (!shown()) return;
      observer.disconnect();
      resolve(Date.now());
    });
    observer.observe(document.body, { subtree: true, childList: true, characterData: true });
  })`);
}

interface FirstRowTimes {
  /** The frame that paints the first row, in ms from navigation start. */
  painted: number;
  /** When the first row's controls are enabled, i.e. the tab's scripts have taken over the row. */
  usable: number;
}

/**
 * Run in each fresh tab before its document: notes when the first VM row enters the page and
 * the animation frame after it (the browser paints right after a frame's callbacks, and holds
 * them back while a stylesheet or a script blocks rendering), and when that row's controls are
 * enabled. Times are the page's own clock (0 = navigation start): Playwright's round trips to
 * a busy page would be measured otherwise. A string for the same reason as watchState.
 */
const FIRST_ROW_TIMES = `(() => {
  let painted, usable, finish;
  const done = new Promise((resolve) => (finish = resolve));
  window.__firstRow = { done };
  const check = () => {
    const row = document.querySelector('[data-testid="vm-row"]');
    if (!row) return;
    if (painted === undefined) {
      painted = null;
      requestAnimationFrame(() => { painted = performance.now(); settle(); });
    }
    const control = row.querySelector("input, button");
    if (usable === undefined && control && control.matches(":enabled")) { usable = performance.now(); settle(); }
  };
  const settle = () => {
    if (typeof painted !== "number" || usable === undefined) return;
    observer.disconnect();
    finish({ painted, usable });
  };
  const observer = new MutationObserver(check);
  observer.observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["disabled"] });
})()`;

async function openTab(context: BrowserContext, vmName: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto("/");
  await page.locator(".live-on").waitFor();
  // The bench VM is the newest, so it is the first row of the default order.
  await page.locator(`[data-testid="vm-row"][data-vm-name="${vmName}"]`).waitFor();
  return page;
}

runBench("dashboard", async ({ work, hangar, imageId }) => {
  const hostId = await hangar.lifecycle.hostId();
  const admin = await addUser(hangar.db, hangar.auth, { ...ADMIN, name: "bench", role: "admin" });
  const stamp = Date.now();
  await hangar.db.vm.createMany({
    data: Array.from({ length: VMS }, (_, i) => ({
      name: `bench-${i}-${stamp}`,
      imageId,
      cpus: 1 + (i % 4),
      memoryMiB: 256,
      state: "Stopped",
      hostId,
      ownerId: admin.id,
      // Spread over the last month, so the Age column shows minutes, hours and days.
      createdAt: new Date(stamp - (VMS - i) * 45 * 60_000),
    })),
  });

  const port = Number(process.env.HANGAR_E2E_PORT ?? (await freePort()));
  const baseURL = `http://127.0.0.1:${port}`;
  const server = spawn(process.execPath, ["--import", "tsx", "server/main.ts"], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    env: {
      ...process.env,
      NODE_ENV: "production",
      HOST: "127.0.0.1",
      PORT: String(port),
      HANGAR_STATE_DIR: path.join(work, "state"),
      HANGAR_GUEST_DIR: guestDir,
      DATABASE_URL: process.env.DATABASE_URL ?? `file:${path.join(work, "state", "hangar.db")}`,
    },
  });
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  let vmId: string | undefined;
  let api: ReturnType<typeof createTRPCClient<AppRouter>> | undefined;
  try {
    await waitForServer(baseURL, server);
    const cookies = await signIn(baseURL);
    const cookieHeader = cookies.map((c) => `${c.name}=${c.value}`).join("; ");
    api = createTRPCClient<AppRouter>({
      links: [httpLink({ url: `${baseURL}/api/trpc`, transformer: superjson, headers: { cookie: cookieHeader, origin: baseURL } })],
    });
    const vmName = `bench-live-${stamp}`;
    vmId = (await api.vm.create.mutate({ name: vmName, imageId, cpus: 1, memoryMiB: 128 })).id;
    const changingVm = vmId;
    const newContext = async () => {
      const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 900 } });
      await context.addCookies(cookies.map((c) => ({ ...c, url: baseURL })));
      return context;
    };

    // First rows: a fresh tab each time (nothing cached), navigation start to a visible row.
    const firstRows: number[] = [];
    const firstRowsUsable: number[] = [];
    const newTabListReads: number[] = [];
    let shape = { rows: 0, elements: 0 };
    for (let i = 0; i < FIRST_ROW_SAMPLES; i++) {
      const context = await newContext();
      const page = await context.newPage();
      let listReads = 0;
      page.on("request", (request) => {
        if (new URL(request.url()).pathname.split(",").some((part) => part.endsWith("vm.list"))) listReads += 1;
      });
      await page.addInitScript(FIRST_ROW_TIMES);
      await page.goto("/");
      const times = await page.evaluate<FirstRowTimes>("window.__firstRow.done");
      firstRows.push(times.painted);
      firstRowsUsable.push(times.usable);
      // Once the live stream has started (and said whether the tab missed anything), the lists it would read again are asked for at once.
      await page.locator(".live-on").waitFor();
      await sleep(1000);
      newTabListReads.push(listReads);
      shape = await page.evaluate(() => ({
        rows: document.querySelectorAll('[data-testid="vm-row"]').length,
        elements: document.querySelectorAll("*").length,
      }));
      await context.close();
    }
    console.log(`first rows visible        median ${median(firstRows).toFixed(0)} ms of ${FIRST_ROW_SAMPLES} fresh tabs (goal < 1000 ms): painted on screen`);
    console.log(`first rows usable         median ${median(firstRowsUsable).toFixed(0)} ms: the first row's controls take clicks (the tab's scripts have run)`);
    console.log(`vm.list reads by a tab   ${newTabListReads.join(", ")} in its first second live (its first rows come with the page)`);
    console.log(`rows in the page          ${shape.rows} of ${VMS + 1} VMs, ${shape.elements} elements`);

    // Scrolling the whole table: count route prefetches (RSC requests for /vms/<id>).
    {
      const context = await newContext();
      const page = await context.newPage();
      let prefetches = 0;
      page.on("request", (request) => {
        const headers = request.headers();
        // The VM pages' routes; the few links of the top bar may prefetch, as they always did.
        if ((headers["next-router-prefetch"] || headers.rsc) && new URL(request.url()).pathname.startsWith("/vms/")) prefetches += 1;
      });
      await page.goto("/");
      await page.locator('[data-testid="vm-row"]').first().waitFor();
      const scroller = page.locator(".table-scroll");
      const oldest = `bench-0-${stamp}`;
      const scrolled = performance.now();
      // Page by page: at the end of what is loaded, the table asks for the next page.
      while (performance.now() - scrolled < 60_000) {
        await scroller.evaluate((element) => (element.scrollTop += element.clientHeight));
        await sleep(50);
        if ((await page.locator(`[data-vm-name="${oldest}"]`).count()) > 0) break;
      }
      await sleep(500);
      const last = await page.locator('[data-testid="vm-row"]').last().getAttribute("data-vm-name");
      const rendered = await page.locator('[data-testid="vm-row"]').count();
      console.log(`VM route prefetches       ${prefetches} while scrolling to the last row (${last}, ${rendered} rows in the page) (goal 0)`);
      await context.close();
    }

    /** Start/stop cycles with `tabs` tabs of one browser open: CPU, bytes, and (when asked) latency. */
    async function measure(tabs: number) {
      const context = await newContext();
      const pages: Page[] = [];
      for (let i = 0; i < tabs; i++) pages.push(await openTab(context, vmName));
      const traffic = await Promise.all(pages.map((page) => Traffic.attach(context, page)));
      await sleep(1000);
      for (const t of traffic) t.reset();
      const latencies: number[] = [];
      let changes = 0;
      const cpuBefore = cpuSeconds(server.pid ?? 0);
      for (let cycle = 0; cycle < cycles; cycle++) {
        const since = new Date();
        // Awaited together, so a failing watcher fails the run (and its clean-up runs).
        const [shownAt] = await Promise.all([
          Promise.all(pages.map((page) => watchState(page, changingVm, "Running"))),
          api!.vm.start.mutate({ id: changingVm }),
        ]);
        const events = await api!.vm.events.query({ vmId: changingVm, limit: 20 });
        const runningAt = events.events.find((e) => e.toState === "Running" && e.createdAt >= since)?.createdAt.getTime();
        if (runningAt !== undefined) latencies.push(Math.max(...shownAt) - runningAt);
        await Promise.all([Promise.all(pages.map((page) => watchState(page, changingVm, "Stopped"))), api!.vm.stop.mutate({ id: changingVm, timeoutSec: 0 })]);
        const after = await api!.vm.events.query({ vmId: changingVm, limit: 20 });
        changes += after.events.filter((e) => e.toState && e.createdAt >= since).length;
      }
      // Let trailing frames (readiness, the pools' reads) land before counting.
      await sleep(1000);
      const cpu = cpuSeconds(server.pid ?? 0) - cpuBefore;
      const bytes = traffic.map((t) => t.total() / changes);
      const frames = traffic.reduce((sum, t) => sum + t.frames, 0) / tabs / changes;
      const requests = traffic.reduce((sum, t) => sum + t.requests, 0) / tabs / changes;
      await context.close();
      return {
        cpuPerChangeMs: (cpu / changes) * 1000,
        changes,
        bytesPerChangePerTab: median(bytes),
        maxBytes: Math.max(...bytes),
        frames,
        requests,
        latencies,
      };
    }

    const one = await measure(1);
    const many = await measure(TABS);
    for (const [label, run] of [
      ["1 tab", one],
      [`${TABS} tabs`, many],
    ] as const) {
      console.log(
        `${label.padEnd(7)} ${run.changes} changes  server CPU ${run.cpuPerChangeMs.toFixed(1)} ms/change  ` +
          `${(run.bytesPerChangePerTab / 1024).toFixed(2)} KB/change/tab (max ${(run.maxBytes / 1024).toFixed(2)})  ` +
          `${run.frames.toFixed(1)} frames and ${run.requests.toFixed(2)} HTTP requests per change per tab`,
      );
    }
    console.log(
      `change to every tab       ${TABS} tabs: median ${median(many.latencies).toFixed(0)} ms, worst ${Math.max(...many.latencies).toFixed(0)} ms from the Running event to the last tab (goal < 500 ms)`,
    );
    console.log(
      `bytes per change per tab  ${(many.bytesPerChangePerTab / 1024).toFixed(2)} KB (goal < 5 KB): ratio to goal ${(many.bytesPerChangePerTab / 5120).toFixed(2)}`,
    );
    console.log(`server CPU per change     ${TABS} tabs / 1 tab = ${(many.cpuPerChangeMs / one.cpuPerChangeMs).toFixed(2)} (goal <= 2)`);
  } finally {
    if (vmId && api) {
      await api.vm.stop.mutate({ id: vmId, timeoutSec: 0 }).catch(() => undefined);
      await api.vm.delete.mutate({ id: vmId }).catch(() => undefined);
    }
    await browser.close();
    server.kill("SIGTERM");
    await new Promise((resolve) => (server.exitCode !== null ? resolve(undefined) : server.once("exit", resolve)));
  }
});
