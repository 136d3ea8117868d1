/**
 * The CLI's connection to Hangar: a tRPC client over HTTP with the saved Bearer token (the
 * router's type only: no server code is loaded), the exit codes, and small shared helpers.
 */
import { createTRPCClient, httpLink, TRPCClientError, type TRPCClient } from "@trpc/client";
import superjson from "superjson";
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

/** Any error as a CliError: a server's refusal keeps its sentence and gets its exit code. */
export function asCliError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof TRPCClientError) {
    const code: unknown = error.data && typeof error.data === "object" && "code" in error.data ? error.data.code : undefined;
    if (typeof code === "string") return new CliError(error.message, BY_TRPC_CODE[code] ?? EXIT.FAILED);
    return new CliError(`Cannot reach Hangar: ${error.message}`, EXIT.UNREACHABLE);
  }
  return new CliError(error instanceof Error ? error.message : String(error), EXIT.FAILED);
}

export type Client = TRPCClient<AppRouter>;

export function clientFor(config: Config): Client {
  return createTRPCClient<AppRouter>({
    links: [httpLink({ url: new URL("/api/trpc", config.url).toString(), transformer: superjson, headers: { authorization: `Bearer ${config.token}` } })],
  });
}

/** The saved login, or exit 3 with what to do. */
export async function requireConfig(): Promise<Config> {
  const config = await loadConfig();
  if (!config) throw new CliError("Not logged in: run `hangar login URL` first (or set HANGAR_URL and HANGAR_TOKEN).", EXIT.UNAUTHENTICATED);
  return config;
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

/** Results on stdout: JSON for scripts, or the human form. Progress goes to stderr. */
export function output<T>(json: boolean, value: T, human: (value: T) => string): void {
  process.stdout.write(json ? `${toJson(value, 2)}\n` : `${human(value)}\n`);
}

/** JSON with sizes (bigint on the server) as numbers: exact up to 8 PiB, which disks stay under. */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? Number(v) : v), indent);
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
