/** Input schemas, with messages a person can act on. */
import { z } from "zod";
import { NETWORK_MODES } from "../vms/forwards.ts";

/** More values than any procedure takes: refused without looking further. */
const MAX_INPUT_VALUES = 10_000;

/**
 * Why the raw input holds text no field accepts, or undefined. A lone surrogate is not
 * Unicode text (databases refuse it); a NUL ends strings in C, in argv and in PostgreSQL.
 */
export function malformedText(input: unknown): string | undefined {
  const pending: [unknown, string][] = [[input, ""]];
  let seen = 1;
  const tooMany = `The input has more than ${MAX_INPUT_VALUES} values; no procedure takes that many.`;
  const problem = (text: string, what: string) => {
    if (!text.isWellFormed()) return `${what} is not well-formed Unicode text (it has a lone surrogate).`;
    if (text.includes("\0")) return `${what} contains a NUL character, which no field accepts.`;
    return undefined;
  };
  for (let next = pending.pop(); next; next = pending.pop()) {
    const [value, where] = next;
    const at = (key: string) => (where ? `${where}.${key}` : key);
    if (typeof value === "string") {
      const found = problem(value, where || "The input");
      if (found) return found;
      continue;
    }
    if (value === null || typeof value !== "object") continue;
    const entries: [string, unknown][] =
      value instanceof Map
        ? [...value].map(([key, item]) => [typeof key === "string" ? key : String(key), item])
        : Array.isArray(value) || value instanceof Set
          ? [...value].map((item, index) => [String(index), item])
          : Object.entries(value);
    seen += entries.length;
    if (seen > MAX_INPUT_VALUES) return tooMany;
    for (const [key, item] of entries) {
      const found = problem(key, `A key in ${where || "the input"}`);
      if (found) return found;
      pending.push([item, at(key)]);
    }
  }
  return undefined;
}
import { STATES } from "../vms/state.ts";
import { FIRMWARES } from "../driver/manager.ts";
import { userDataProblem } from "../driver/user-data.ts";
import { MAX_TAGS, VM_LIMITS, VM_NAME_PATTERN, VM_NAME_RULE, VM_SORT_KEYS, type VmSortKey } from "../../lib/vocabulary.ts";

export const vmName = z.string().regex(new RegExp(`^${VM_NAME_PATTERN}$`), `Names are DNS labels: ${VM_NAME_RULE}.`);

/** Ids Hangar makes (cuid): VMs, images, pools, events, tokens. */
export const id = z
  .string()
  .min(1, "An id is required.")
  .max(64, "That id is too long.")
  .regex(/^[a-z0-9]+$/, "Ids are lowercase letters and digits.");

/** User ids come from the sign-in library (and UUIDs in tests): letters, digits, - and _. */
export const userId = z
  .string()
  .min(1, "A user id is required.")
  .max(64, "That user id is too long.")
  .regex(/^[A-Za-z0-9_-]+$/, "User ids are letters, digits, dashes and underscores.");

const port = (what: string) =>
  z.number().int(`${what} must be a whole number.`).min(0, `${what} must be 0 to 65535.`).max(65535, `${what} must be 0 to 65535.`);

export const portForward = z.object({
  hostPort: port("hostPort").refine((p) => p === 0 || p >= 1024, "hostPort must be 0 (any free port) or 1024 and above."),
  guestPort: port("guestPort")
    .min(1, "guestPort must be 1 to 65535.")
    .refine((p) => p !== 22, "guestPort 22 is SSH, which is always forwarded."),
});

/** A disk size in GiB: at least the image's (smaller asks are taken as the image's size). */
export const diskGiB = z.number().int("diskGiB must be a whole number.").min(1, "diskGiB must be at least 1.").max(4096, "diskGiB is at most 4096.");

const { cpus: CPUS, memoryMiB: MEMORY, forwards: FORWARDS } = VM_LIMITS;

/** A VM's (or pool member's) vCPUs and memory, within VM_LIMITS (which the forms offer too). */
export const cpus = z
  .number()
  .int("cpus must be a whole number.")
  .min(CPUS.min, `A VM needs at least ${CPUS.min} CPU.`)
  .max(CPUS.max, `At most ${CPUS.max} CPUs per VM.`);
export const memoryMiB = z
  .number()
  .int("memoryMiB must be a whole number.")
  .min(MEMORY.min, `A VM needs at least ${MEMORY.min} MiB of memory.`)
  .max(MEMORY.max, `At most ${MEMORY.max} MiB of memory per VM.`);

/** What a VM is for, in people's words. */
export const description = z.string().max(2000, "description is at most 2,000 characters.");

/** Tags as a person gives them; the rules (lib/vocabulary.ts) are checked where they are kept (server/vms/tags.ts). */
export const tags = z.array(z.string().max(64, "A tag is at most 32 characters.")).max(MAX_TAGS * 4, `A VM has at most ${MAX_TAGS} tags.`);

/** A VM's cloud-init user-data: refused here, not at its first start, when cloud-init could not read it. */
export const userData = z
  .string()
  .max(64 * 1024, "user-data is limited to 64 KiB.")
  .superRefine((text, ctx) => {
    const problem = userDataProblem(text);
    if (problem) ctx.addIssue({ code: "custom", message: `${problem} Fix it and try again.` });
  });

export const createVmInput = z.object({
  name: vmName,
  imageId: id,
  /** The host to run it on (host.list); without it, a live host with room is picked. */
  hostId: id.optional(),
  /** An imported ISO image to put in the CD-ROM drive, e.g. an installer. */
  cdromImageId: id.optional(),
  cpus,
  memoryMiB,
  userData: userData.optional(),
  diskGiB: diskGiB.optional(),
  /** Start it when its host boots. */
  autostart: z.boolean().optional(),
  description: description.optional(),
  tags: tags.optional(),
  network: z.enum(NETWORK_MODES, "network must be nat, isolated or bridge.").default("nat"),
  bridge: z
    .string()
    .regex(/^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,14}$/, "bridge is a host interface name such as br0.")
    .optional(),
  ports: z
    .array(portForward)
    .max(FORWARDS.max, `At most ${FORWARDS.max} port forwards per VM.`)
    .refine((ports) => new Set(ports.map((p) => p.guestPort)).size === ports.length, "Each guest port may be forwarded once.")
    .refine((ports) => {
      const fixed = ports.filter((p) => p.hostPort !== 0).map((p) => p.hostPort);
      return new Set(fixed).size === fixed.length;
    }, "Each host port may be used once.")
    .optional(),
});

/** A login name as useradd takes it. */
export const loginUser = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "loginUser is a user name in the guest: lowercase letters, digits, _ and -, at most 32.");

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
    cmdline: z
      .string()
      .max(4096)
      .refine((c) => !/[\n\r\0]/.test(c), "cmdline must be one line.")
      .optional(),
    /** The account Hangar logs in as; default "hangar" (made by cloud-init). For images without cloud-init, e.g. "root". */
    loginUser: loginUser.optional(),
    /** Absent: read from the disk (an EFI system partition and no BIOS boot code: "uefi"). */
    firmware: z.enum(FIRMWARES, { error: 'firmware must be "bios" or "uefi".' }).optional(),
  })
  .refine((input) => Boolean(input.path) !== Boolean(input.url), "Give either a path (under the images directory) or a url.")
  .refine((input) => input.cmdline === undefined || input.kernel !== undefined, {
    message: "A kernel command line needs a kernel; give the kernel too, or leave the command line out.",
    path: ["cmdline"],
  })
  .refine((input) => input.initrd === undefined || input.kernel !== undefined, { message: "An initrd needs a kernel too.", path: ["initrd"] });

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
  /** Run as root (through `sudo -n` in the guest) instead of the image's login user. */
  asRoot: z.boolean().default(false),
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
  chown: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]*(:[a-z_][a-z0-9_-]*)?$/, "chown is user or user:group (lowercase names).")
    .optional(),
  /** Write as root (the guest's rsync through `sudo -n`), e.g. into /etc; chown implies it. */
  asRoot: z.boolean().default(false),
});

export const waitInput = z.object({
  id,
  for: z.union([z.literal("ready"), z.enum(STATES)], 'for is "ready" or a VM state such as "Running" or "Stopped".'),
  timeoutSec: z.number().int("timeoutSec must be a whole number.").min(1, "timeoutSec must be at least 1.").max(600, "timeoutSec is at most 600.").default(120),
});

/** What vm.list sorts by (lib/vocabulary.ts: the dashboard sorts a changed row into place by the same order). */
export { VM_SORT_KEYS, type VmSortKey };

/** A page of vm.list holds at most this many rows. */
export const VM_LIST_MAX_LIMIT = 1000;
/** A page's size when the input names none. */
export const VM_LIST_DEFAULT_LIMIT = 100;

/**
 * vm.list's input. Absent altogether (old callers): every VM in one page, oldest first.
 * The answer is `{ items, nextCursor, total }`: `items` the page's rows (no userData; vm.get
 * has it), `nextCursor` to pass back for the next page (null on the last), `total` how many
 * VMs match the filters. Paging is keyset on (sort value, id): a VM created while a caller
 * pages shows up at most once and never shifts the pages after it.
 */
export const vmListInput = z
  .object({
    /** Part of the name, in any case. */
    search: z.string().max(63, "search is at most 63 characters, a VM name's length.").optional(),
    /** One state, or a list of them. */
    state: z
      .union([z.enum(STATES), z.array(z.enum(STATES)).min(1, "state needs at least one state.").max(STATES.length, "state lists each state at most once.")], {
        error: 'state is a VM state such as "Running", or a list of them.',
      })
      .optional(),
    /** "mine": the caller's VMs; a user id: that user's. */
    owner: z.union([z.literal("mine"), userId], { error: 'owner is "mine" or a user id.' }).optional(),
    hostId: id.optional(),
    imageId: id.optional(),
    poolId: id.optional(),
    /** VMs with this tag, in any case. */
    tag: z.string().max(32, "tag is at most 32 characters, a tag's length.").optional(),
    sort: z.enum(VM_SORT_KEYS, { error: `sort is one of ${VM_SORT_KEYS.join(", ")}.` }).default("created"),
    order: z.enum(["asc", "desc"], { error: 'order is "asc" or "desc".' }).default("asc"),
    limit: z
      .number()
      .int("limit must be a whole number.")
      .min(1, "limit must be at least 1.")
      .max(VM_LIST_MAX_LIMIT, `limit is at most ${VM_LIST_MAX_LIMIT}; page with nextCursor for more.`)
      .default(VM_LIST_DEFAULT_LIMIT),
    /** nextCursor of the previous page, with the same filters and sort. */
    cursor: z
      .string()
      .max(1024, "That cursor is too long; pass nextCursor as vm.list returned it.")
      .regex(/^[A-Za-z0-9_-]+$/, "That is not a cursor vm.list returned; pass nextCursor as it came.")
      .optional(),
  })
  .optional();
export type VmListInput = z.output<typeof vmListInput>;
