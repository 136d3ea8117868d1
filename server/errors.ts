/**
 * Domain errors. Domain code throws these, never TRPCError; server/api/trpc.ts maps each
 * code to a tRPC code in one errorFormatter.
 */
export const ERROR_CODES = {
  /** The action is not allowed from the VM's current state (the state table says no). */
  VM_INVALID_TRANSITION: "CONFLICT",
  /** Another action on the same VM won the compare-and-set, or one is still running. */
  VM_BUSY: "CONFLICT",
  /** No VM, image or other record with that id or name. Seed: ErrVMNotFound. */
  NOT_FOUND: "NOT_FOUND",
  /** A VM with protection on cannot be deleted (Proxmox's Protection); turn it off first. */
  VM_PROTECTED: "PRECONDITION_FAILED",
  /**
   * The VM must be running for this, or it stopped under the action (its qemu ended: killed,
   * as it started or during a save). Seed: ErrVMNotRunning / ErrNotRunning.
   */
  NOT_RUNNING: "PRECONDITION_FAILED",
  /** Start of a VM whose qemu is already running. Seed: ErrAlreadyRunning. */
  ALREADY_RUNNING: "CONFLICT",
  /** A name, port or other unique value is already taken. */
  ALREADY_EXISTS: "CONFLICT",
  /** A requested host port is taken by another VM or process. */
  PORT_IN_USE: "CONFLICT",
  /** Input that passed the schema but makes no sense here (a path outside the images dir…). */
  INVALID_INPUT: "BAD_REQUEST",
  /** qemu-system, qemu-img, genisoimage… is not installed on this host. */
  HOST_TOOL_MISSING: "PRECONDITION_FAILED",
  /** A per-user limit on VMs, vCPUs or memory would be exceeded. */
  QUOTA_EXCEEDED: "FORBIDDEN",
  /** An image is still importing or its import failed. */
  IMAGE_NOT_READY: "PRECONDITION_FAILED",
  /** An image that VMs or pools still use cannot be deleted. */
  IMAGE_IN_USE: "CONFLICT",
  /** The hypervisor or a host tool failed; the message says how. */
  DRIVER_FAILED: "INTERNAL_SERVER_ERROR",
  /** waitForState gave up, or saw a state it did not expect on the way. */
  WAIT_FAILED: "TIMEOUT",
  /**
   * A command in a VM ran past the time the caller gave it and was ended, or the host a call
   * was forwarded to did not take it or finish it in time (the sentence names the host).
   */
  TIMEOUT: "TIMEOUT",
  /** No session cookie or API token came with the request, or it is no longer valid. */
  UNAUTHENTICATED: "UNAUTHORIZED",
  /** Signed in, but the role or ownership does not allow this. */
  FORBIDDEN: "FORBIDDEN",
  /** The VM's host (or the host asked for) has no recent heartbeat: nothing acts on its VMs. */
  HOST_OFFLINE: "PRECONDITION_FAILED",
  /** The host's memory for VMs (HANGAR_MEMORY_OVERCOMMIT, HANGAR_MEMORY_RESERVE_MIB) would be exceeded. */
  HOST_FULL: "PRECONDITION_FAILED",
  /** An admin keeps VMs off the host (host.evacuate): no VM is placed or moved there until host.restore. */
  HOST_IN_MAINTENANCE: "PRECONDITION_FAILED",
  /** An evacuation or restore of the host is under way already. */
  HOST_BUSY: "CONFLICT",
  /** Too many attempts of something guessable (a current password) in a short time. */
  RATE_LIMITED: "TOO_MANY_REQUESTS",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Whether `code` (read back from a peer host) is one of Hangar's domain error codes. */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

export class HangarError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "HangarError";
    this.code = code;
  }
}

export function isHangarError(error: unknown): error is HangarError {
  return error instanceof HangarError;
}

/** The message of anything thrown, for the server log (userMessage is what people see). */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A sentence this host phrased for its own callers ("taken on this host"), for a reader on any
 * host (a forwarded call's caller, what a VM keeps): it names the host instead.
 */
export function namingHost(message: string, hostName: string): string {
  return message.replaceAll("this host", `host ${hostName}`);
}

/** The message with the chain of causes under it: everything the server log should keep. */
export function errorDetail(error: unknown): string {
  const cause = error instanceof Error ? error.cause : undefined;
  return cause === undefined ? errorMessage(error) : `${errorMessage(error)} (cause: ${errorDetail(cause)})`;
}

/**
 * Replaces each absolute path in `text` with "…/" and its last part: what a person needs to
 * recognise the file, without the host's layout. URLs are left alone.
 */
export function withoutHostPaths(text: string): string {
  return text.replace(/(^|[\s'"`=(\[,<])(\/[^\s'"`)\],>]*)/g, (_match, before: string, file: string) => {
    const last = file.split("/").filter(Boolean).pop();
    return `${before}${last ? `…/${last}` : file}`;
  });
}

/** What execa's errors carry that a safe sentence can use (duck-typed: this module is shared). */
interface ProcessFailure {
  command: string;
  exitCode?: number;
  signal?: string;
  timedOut?: boolean;
  stderr?: unknown;
  code?: string;
}

function isProcessFailure(error: unknown): error is ProcessFailure & Error {
  return error instanceof Error && error.name === "ExecaError" && typeof (error as Partial<ProcessFailure>).command === "string";
}

function firstLine(text: string): string {
  return (
    text
      .split("\n")
      .map((line) => line.trim())
      .find(Boolean) ?? ""
  );
}

/**
 * A sentence about a thrown error that is safe to show to whoever may see the VM: its Vm.error,
 * its events and DRIVER_FAILED messages. A failed process says which tool failed and how (its
 * first line of stderr, paths shortened), never its command line; database errors say only that.
 * The full error belongs in the server log.
 */
export function userMessage(error: unknown): string {
  if (isHangarError(error)) return withoutHostPaths(error.message);
  if (isProcessFailure(error)) {
    const tool = (error.command.split(" ")[0] ?? "").split("/").pop() || "a host tool";
    if (error.timedOut) return `${tool} did not finish in time`;
    if (error.code === "ENOENT") return `${tool} is not installed on this host`;
    const stderr = typeof error.stderr === "string" ? withoutHostPaths(firstLine(error.stderr)).slice(0, 300) : "";
    const how = error.signal ? `was killed by ${error.signal}` : error.exitCode !== undefined ? `exited with code ${error.exitCode}` : "could not be run";
    return stderr ? `${tool} ${how}: ${stderr}` : `${tool} ${how}`;
  }
  if (error instanceof Error && /^(PrismaClient|DriverAdapterError)/.test(error.name)) return "a database operation failed";
  return withoutHostPaths(firstLine(errorMessage(error))).slice(0, 300) || "an unknown error";
}

/** Prisma's error for a unique constraint (P2002) or a vanished row (P2025), from either driver adapter. */
interface DatabaseRequestError {
  code: string;
  meta?: { modelName?: unknown; target?: unknown; driverAdapterError?: { cause?: { constraint?: { fields?: unknown } } } };
}

function isDatabaseRequestError(error: unknown): error is DatabaseRequestError & Error {
  return error instanceof Error && error.name === "PrismaClientKnownRequestError" && typeof (error as Partial<DatabaseRequestError>).code === "string";
}

/** Prisma's unique-constraint violation (P2002), on either provider: a create lost a race. */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === "object" && error !== null && "code" in error && error.code === "P2002";
}

/** What people call each model in a sentence. */
const MODEL_NOUNS: Record<string, string> = {
  Vm: "VM",
  Image: "image",
  Pool: "pool",
  User: "user",
  ApiToken: "token",
  Host: "host",
  PortForward: "port forward",
};

/** "hostPort" -> "host port". */
const words = (field: string) => field.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`);

/**
 * The domain error a database refusal means, or undefined when it means a bug. A unique
 * constraint lost in a race (two creates with one name) is ALREADY_EXISTS, naming what is
 * taken; a row deleted under an update is NOT_FOUND.
 */
export function fromDatabaseError(error: unknown): HangarError | undefined {
  if (!isDatabaseRequestError(error)) return undefined;
  const model = typeof error.meta?.modelName === "string" ? error.meta.modelName : "";
  const noun = MODEL_NOUNS[model] ?? (model ? words(model).trim() : "record");
  if (error.code === "P2002") {
    const reported = error.meta?.driverAdapterError?.cause?.constraint?.fields ?? error.meta?.target;
    const fields = (Array.isArray(reported) ? reported : [reported])
      .filter((field): field is string => typeof field === "string" && field !== "userId" && field !== "id")
      .map(words);
    const what = fields.length ? `that ${fields.join(" and ")}` : "those details";
    return new HangarError("ALREADY_EXISTS", `A ${noun} with ${what} already exists; pick another.`, { cause: error });
  }
  if (error.code === "P2025") return new HangarError("NOT_FOUND", `That ${noun} no longer exists; it may have just been deleted.`, { cause: error });
  return undefined;
}
