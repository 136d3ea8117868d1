/** Input schemas, with messages a person can act on. */
import { z } from "zod";
import { FIRMWARES } from "../driver/manager.ts";

export const vmName = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    "Names are DNS labels: 1 to 63 lowercase letters, digits and hyphens, not starting or ending with a hyphen.",
  );

export const id = z.string().min(1, "An id is required.").max(64, "That id is too long.").regex(/^[a-z0-9]+$/, "Ids are lowercase letters and digits.");

const port = (what: string) =>
  z.number().int(`${what} must be a whole number.`).min(0, `${what} must be 0 to 65535.`).max(65535, `${what} must be 0 to 65535.`);

export const portForward = z.object({
  hostPort: port("hostPort").refine((p) => p === 0 || p >= 1024, "hostPort must be 0 (any free port) or 1024 and above."),
  guestPort: port("guestPort").min(1, "guestPort must be 1 to 65535.").refine((p) => p !== 22, "guestPort 22 is SSH, which is always forwarded."),
});

export const createVmInput = z.object({
  name: vmName,
  imageId: id,
  cpus: z.number().int("cpus must be a whole number.").min(1, "A VM needs at least 1 CPU.").max(16, "At most 16 CPUs per VM."),
  memoryMiB: z
    .number()
    .int("memoryMiB must be a whole number.")
    .min(64, "A VM needs at least 64 MiB of memory.")
    .max(65536, "At most 65536 MiB of memory per VM."),
  userData: z.string().max(64 * 1024, "user-data is limited to 64 KiB.").optional(),
  ports: z
    .array(portForward)
    .max(16, "At most 16 port forwards per VM.")
    .refine((ports) => new Set(ports.map((p) => p.guestPort)).size === ports.length, "Each guest port may be forwarded once.")
    .refine(
      (ports) => {
        const fixed = ports.filter((p) => p.hostPort !== 0).map((p) => p.hostPort);
        return new Set(fixed).size === fixed.length;
      },
      "Each host port may be used once.",
    )
    .optional(),
});

const sha256 = z.string().regex(/^[0-9a-fA-F]{64}$/, "sha256 must be 64 hexadecimal digits.");

export const importImageInput = z
  .object({
    name: vmName,
    path: z.string().min(1).max(4096).optional(),
    url: z
      .string()
      .url("url must be a full http(s) URL.")
      .refine((u) => /^https?:\/\//i.test(u), "Only http and https URLs can be imported.")
      .optional(),
    sha256: sha256.optional(),
    kernel: z.string().min(1).max(4096).optional(),
    initrd: z.string().min(1).max(4096).optional(),
    cmdline: z.string().max(4096).refine((c) => !/[\n\r\0]/.test(c), "cmdline must be one line.").optional(),
    /** Absent: read from the disk (an EFI system partition and no BIOS boot code: "uefi"). */
    firmware: z.enum(FIRMWARES, { error: 'firmware must be "bios" or "uefi".' }).optional(),
  })
  .refine((input) => Boolean(input.path) !== Boolean(input.url), "Give either a path (under the images directory) or a url.");

/** No NUL or line break: the value ends up as one argv word or one rsync argument. */
const oneLine = (value: string) => !/[\n\r\0]/.test(value);

export const execInput = z.object({
  id,
  command: z
    .array(
      z
        .string()
        .max(8192, "Each word of command is at most 8192 characters.")
        .refine((word) => !word.includes("\0"), "command words must not contain NUL bytes."),
      "command is a list of words: the program, then its arguments.",
    )
    .min(1, "command needs at least the program.")
    .max(256, "command has at most 256 words.")
    .refine((command) => (command[0] ?? "") !== "", "The first word of command is the program; it cannot be empty."),
  timeoutSec: z
    .number()
    .int("timeoutSec must be a whole number.")
    .min(1, "timeoutSec must be at least 1.")
    .max(3600, "timeoutSec is at most 3600.")
    .default(60),
});

export const syncInput = z.object({
  id,
  from: z
    .string()
    .min(1, "from names a file or directory under the sync root.")
    .max(4096, "from is at most 4096 characters.")
    .refine(oneLine, "from must be one line without NUL bytes."),
  to: z
    .string()
    .max(4096, "to is at most 4096 characters.")
    .regex(/^\/[A-Za-z0-9._/+@%=,:~ -]*$/, "to must be an absolute path in the VM made of letters, digits, spaces and ._-+@%=,:~/ ."),
  excludes: z
    .array(
      z
        .string()
        .min(1, "An exclude pattern cannot be empty.")
        .max(256, "An exclude pattern is at most 256 characters.")
        .refine(oneLine, "exclude patterns must be one line without NUL bytes."),
    )
    .max(64, "At most 64 exclude patterns.")
    .optional(),
  chown: z.string().regex(/^[a-z_][a-z0-9_-]*(:[a-z_][a-z0-9_-]*)?$/, "chown is user or user:group (lowercase names).").optional(),
});
