/**
 * The CLI's connection to Hangar: a tRPC client over HTTP with the saved Bearer token (the
 * router's type only: no server code is loaded), the exit codes, and small shared helpers.
 */
import { createTRPCClient, httpLink, TRPCClientError, type TRPCClient } from "@trpc/client";
import { readFile } from "node:fs/promises";
import type { inferRouterOutputs } from "@trpc/server";
import superjson from "superjson";
import { Agent } from "undici";
import type { AppRouter } from "../server/api/root.ts";
import { loadConfig, type Config } from "./config.ts";
import { defaultImage } from "../lib/vocabulary.ts";

/** Exit codes: the same for every command (README, "Command line"). */
export const EXIT = {
  OK: 0,
  /** Anything else: the server failed, the connection broke. */
  FAILED: 1,
  /** Bad arguments or input the server refused as such (BAD_REQUEST). */
  USAGE: 2,
  /** Not logged in, or the token is no longer valid. */
  UNAUTHENTICATED: 3,
  /** Your role or ownership does not allow it. */
  FORBIDDEN: 4,
  /** No such VM, image, pool or key. */
  NOT_FOUND: 5,
  /** Not possible in the current state (a Running VM cannot be deleted, a name is taken…). */
  CONFLICT: 6,
  /** A wait or command ran out of time. */
  TIMEOUT: 7,
  /** The server cannot be reached. */
  UNREACHABLE: 8,
} as const;

/** A failure with a sentence for the person and the exit code it ends with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = "CliError";
  }
}

const BY_TRPC_CODE: Record<string, number> = {
  BAD_REQUEST: EXIT.USAGE,
  UNAUTHORIZED: EXIT.UNAUTHENTICATED,
  FORBIDDEN: EXIT.FORBIDDEN,
  NOT_FOUND: EXIT.NOT_FOUND,
  CONFLICT: EXIT.CONFLICT,
  PRECONDITION_FAILED: EXIT.CONFLICT,
  TIMEOUT: EXIT.TIMEOUT,
};

/** The API's input fields that the server's sentences name, as the flags a person typed here. */
const FLAGS: [RegExp, string][] = [
  [/\btimeoutSec\b/g, "--timeout"],
  [/\bmemoryMiB\b/g, "--memory"],
  [/\bdiskGiB\b/g, "--disk"],
];
const asFlags = (message: string) => FLAGS.reduce((text, [field, flag]) => text.replace(field, flag), message);

/** Any error as a CliError: a server's refusal keeps its sentence and gets its exit code. */
export function asCliError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof TRPCClientError) {
    // clientFor's fetch already said why the server could not be reached.
    if (error.cause instanceof CliError) return error.cause;
    const code: unknown = error.data && typeof error.data === "object" && "code" in error.data ? error.data.code : undefined;
    // The server's sentence ("Sign in first, or send an API token…") is for the web: here a
    // token was sent, and it is the one that no longer works.
    if (code === "UNAUTHORIZED") return new CliError(NOT_ACCEPTED, EXIT.UNAUTHENTICATED);
    if (typeof code === "string") return new CliError(asFlags(error.message), BY_TRPC_CODE[code] ?? EXIT.FAILED);
    return new CliError(`Cannot reach Hangar: ${error.message}`, EXIT.UNREACHABLE);
  }
  return new CliError(error instanceof Error ? error.message : String(error), EXIT.FAILED);
}

export const NOT_ACCEPTED = "Hangar does not accept your API token (unknown, expired or revoked): run `hangar login URL` again.";

/** fetch's causes, as a person reads them ("fetch failed" alone says nothing). */
const REASONS: Record<string, string> = {
  ECONNREFUSED: "nothing answers there (connection refused)",
  ENOTFOUND: "no such host",
  EAI_AGAIN: "its name does not resolve now",
  ETIMEDOUT: "the connection timed out",
  UND_ERR_CONNECT_TIMEOUT: "the connection timed out",
  ECONNRESET: "the connection was reset",
  EHOSTUNREACH: "the host is unreachable",
  ENETUNREACH: "the network is unreachable",
  ERR_SSL_WRONG_VERSION_NUMBER: "it does not answer https there (is it http://?)",
};

/** A request that got no answer from `origin`, with the reason fetch's cause gives. */
export function unreachable(origin: string, error: unknown): CliError {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const code = cause && typeof cause === "object" && "code" in cause && typeof cause.code === "string" ? cause.code : "";
  // OpenSSL's messages run on with its source file: their first line, without it.
  const said = (cause instanceof Error ? cause.message : String(cause))
    .split("\n", 1)[0]
    ?.replace(/:[^:\s]*\.c:\d+:?$/, "")
    .replace(/\.$/, "");
  return new CliError(`Cannot reach Hangar at ${origin}: ${REASONS[code] ?? said}.`, EXIT.UNREACHABLE);
}

/** Hangar's address as typed (a login's argument, HANGAR_URL): its origin, or a usage error that shows the form. */
export function hangarOrigin(raw: string): string {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  // "localhost:3000" parses, as the scheme "localhost:": only http and https are addresses here.
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:"))
    throw new CliError(`"${raw}" is not Hangar's address; give it with http:// or https://, e.g. https://hangar.example.`, EXIT.USAGE);
  return url.origin;
}

export type Client = TRPCClient<AppRouter>;
/** Where an evacuation or restore took each VM, as host.evacuate answers it. */
export type Relocation = inferRouterOutputs<AppRouter>["host"]["evacuate"];
/** One usage sample of a VM, as metrics.vm answers it. */
export type VmUsagePoint = inferRouterOutputs<AppRouter>["metrics"]["vm"]["points"][number];

/**
 * Waits for an answer as long as the server takes: a move, an evacuation or a long wait answers
 * only when done, and fetch's own limit (300 s for the response to begin) would cut it off.
 * The server bounds every call itself.
 */
const patient = new Agent({ headersTimeout: 0 });

export function clientFor(config: Config): Client {
  const origin = new URL(config.url).origin;
  return createTRPCClient<AppRouter>({
    links: [
      httpLink({
        url: new URL("/api/trpc", config.url).toString(),
        transformer: superjson,
        headers: { authorization: `Bearer ${config.token}` },
        fetch: async (input, init) => {
          const patiently: RequestInit & { dispatcher: Agent } = { ...init, dispatcher: patient };
          const response = await fetch(input, patiently).catch((error: unknown) => {
            throw unreachable(origin, error);
          });
          // Another web server at that address answers with a page, which tRPC reports as bad
          // JSON; Hangar's own plain-text refusals (a host name it does not answer to) say why.
          const type = response.headers.get("content-type") ?? "";
          if (type.includes("json")) return response;
          const said = type.startsWith("text/plain") ? (await response.text()).split("\n", 1)[0]?.slice(0, 300) : undefined;
          throw new CliError(
            said
              ? `${origin} refused (HTTP ${response.status}): ${said}`
              : `${origin} does not answer as Hangar does (HTTP ${response.status}, no API there); check the address.`,
            EXIT.UNREACHABLE,
          );
        },
      }),
    ],
  });
}

/** The saved login, or exit 3 with what to do. */
export async function requireConfig(): Promise<Config> {
  const config = await loadConfig();
  if (!config) throw new CliError("Not logged in: run `hangar login URL` first (or set HANGAR_URL and HANGAR_TOKEN).", EXIT.UNAUTHENTICATED);
  return { ...config, url: hangarOrigin(config.url) };
}

export async function connect(): Promise<{ config: Config; api: Client }> {
  const config = await requireConfig();
  return { config, api: clientFor(config) };
}

/** VM ids are cuids; anything else is a name. */
const looksLikeId = (value: string) => /^c[a-z0-9]{20,}$/.test(value);

/** The id of the VM named `nameOrId` (a name, or an id as printed by `hangar ls --json`). */
export async function resolveVm(api: Client, nameOrId: string): Promise<string> {
  // The server searches names: the VMs whose names contain it, not the whole inventory.
  let cursor: string | undefined;
  while (nameOrId.length <= 63) {
    const page = await api.vm.list.query({ search: nameOrId, sort: "name", limit: 200, cursor });
    const named = page.items.find((vm) => vm.name === nameOrId);
    if (named) return named.id;
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  if (looksLikeId(nameOrId)) {
    const byId = await api.vm.get.query({ id: nameOrId }).catch(() => undefined);
    if (byId) return byId.id;
  }
  throw new CliError(`No VM named "${nameOrId}"; \`hangar ls\` lists them.`, EXIT.NOT_FOUND);
}

/** The id of the user with this email (admins list users; anyone else is refused there). */
export async function resolveUser(api: Client, email: string): Promise<string> {
  const found = (await api.user.list.query()).find((user) => user.email.toLowerCase() === email.toLowerCase());
  if (!found) throw new CliError(`No user has the email "${email}".`, EXIT.NOT_FOUND);
  return found.id;
}

/** The image named, or with none named the one the New VM form picks (defaultImage). */
export async function resolveImage(api: Client, nameOrId: string | undefined): Promise<string> {
  const images = await api.image.list.query();
  if (nameOrId === undefined) {
    const chosen = defaultImage(images.filter((image) => image.status === "ready"));
    if (!chosen) throw new CliError("No image is ready yet: import one (`hangar image import`) or wait for the one importing.", EXIT.NOT_FOUND);
    return chosen.id;
  }
  const found = images.find((image) => image.name === nameOrId || image.id === nameOrId);
  if (!found) throw new CliError(`No image named "${nameOrId}"; \`hangar image ls\` lists them.`, EXIT.NOT_FOUND);
  return found.id;
}

export async function resolvePool(api: Client, nameOrId: string): Promise<string> {
  const pools = await api.pool.list.query();
  const found = pools.find((pool) => pool.name === nameOrId || pool.id === nameOrId);
  if (!found) throw new CliError(`No pool named "${nameOrId}"; \`hangar pool ls\` lists them.`, EXIT.NOT_FOUND);
  return found.id;
}

/** The host with this name or id (`hangar host ls`); an offline one too: the server says why it refuses. */
export async function resolveHost(api: Client, nameOrId: string): Promise<string> {
  const found = (await api.host.list.query()).find((host) => host.name === nameOrId || host.id === nameOrId);
  if (!found) throw new CliError(`No host named "${nameOrId}"; \`hangar host ls\` lists them.`, EXIT.NOT_FOUND);
  return found.id;
}

const FILE_REASONS: Record<string, string> = { ENOENT: "no such file", EISDIR: "it is a directory", EACCES: "permission denied" };

/** A local file the person named (`--user-data`, `--public-key`): its text, or one sentence and exit 5. */
export async function readLocalFile(file: string, flag: string): Promise<string> {
  return readFile(file, "utf8").catch((error: unknown) => {
    const code = error && typeof error === "object" && "code" in error && typeof error.code === "string" ? error.code : "";
    throw new CliError(`Cannot read ${flag} ${file}: ${FILE_REASONS[code] ?? (error instanceof Error ? error.message : String(error))}.`, EXIT.NOT_FOUND);
  });
}

/** Results on stdout: JSON for scripts, or the human form. Progress goes to stderr. */
export function output<T>(json: boolean, value: T, human: (value: T) => string): void {
  process.stdout.write(json ? `${toJson(value, 2)}\n` : `${human(value)}\n`);
}

/** JSON with sizes (bigint on the server) as numbers: exact up to 8 PiB, which disks stay under. */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? Number(v) : v), indent);
}

/** A time as a person reads it in a table: this machine's local time, to the minute (or second). */
export function localTime(date: Date, seconds = false): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  return `${day} ${pad(date.getHours())}:${pad(date.getMinutes())}${seconds ? `:${pad(date.getSeconds())}` : ""}`;
}

/** Bytes as whole MiB, as the CLI shows sizes. */
export function mib(bytes: number | bigint): string {
  return `${Math.round(Number(bytes) / 2 ** 20)} MiB`;
}

/** A VM's last usage sample as `hangar get` shows it (as `incus info` does); only the figures measured. */
export function usageText(usage: VmUsagePoint): string {
  const rate = (bytes: number) =>
    bytes < 1024 ? `${Math.round(bytes)} B/s` : bytes < 2 ** 20 ? `${(bytes / 1024).toFixed(1)} KiB/s` : `${(bytes / 2 ** 20).toFixed(1)} MiB/s`;
  const { guestMemTotalBytes: total, guestMemUsedBytes: used } = usage;
  return [
    usage.cpuPercent === null ? "" : `CPU ${Math.round(usage.cpuPercent)} %`,
    total === null || used === null ? "" : `guest memory ${mib(used)} used of ${mib(total)}`,
    // qemu's resident memory: what the guest touched, and qemu's own (the TCG code cache too).
    usage.rssBytes === null ? "" : `qemu resident ${mib(usage.rssBytes)}`,
    usage.diskReadBytesPerSec === null || usage.diskWriteBytesPerSec === null
      ? ""
      : `disk read ${rate(usage.diskReadBytesPerSec)}, write ${rate(usage.diskWriteBytesPerSec)}`,
    usage.netRxBytesPerSec === null || usage.netTxBytesPerSec === null ? "" : `network in ${rate(usage.netRxBytesPerSec)}, out ${rate(usage.netTxBytesPerSec)}`,
  ]
    .filter(Boolean)
    .join("; ");
}

/** A plain text table, columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
