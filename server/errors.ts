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
  /** The VM must be running for this. Seed: ErrVMNotRunning / ErrNotRunning. */
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
  /** The hypervisor or a host tool failed; the message says how. */
  DRIVER_FAILED: "INTERNAL_SERVER_ERROR",
  /** waitForState gave up, or saw a state it did not expect on the way. */
  WAIT_FAILED: "TIMEOUT",
  /** A command in a VM ran past the time the caller gave it and was ended. */
  TIMEOUT: "TIMEOUT",
  /** No session cookie or API token came with the request, or it is no longer valid. */
  UNAUTHENTICATED: "UNAUTHORIZED",
  /** Signed in, but the role or ownership does not allow this. */
  FORBIDDEN: "FORBIDDEN",
  /** The VM runs on another host; act on it through that host's Hangar. */
  HOST_MISMATCH: "PRECONDITION_FAILED",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

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

/** The message of anything thrown, for error columns and events. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
