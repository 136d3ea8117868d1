/**
 * Output schemas of the procedures served as REST (server/api/openapi.ts), which describe
 * their responses in the OpenAPI document. Each names the fields a REST caller relies on
 * and lets the rest through unchanged (loose objects): the procedure's TypeScript type stays
 * the resolver's own, so tRPC callers (the dashboard, hangar/client) see every field.
 */
import { z } from "zod";
import { FIRMWARES, STAGING_STATES } from "../../lib/vocabulary.ts";
import { STREAMS } from "../audit/recorder.ts";
import { ROLES, type Principal } from "../auth/permissions.ts";
import type { addSshKey, listSshKeys } from "../auth/ssh-keys.ts";
import type { createToken, listTokens } from "../auth/tokens.ts";
import type { listUsers } from "../auth/users.ts";
import type { Db } from "../db.ts";
import type { createImages } from "../images/images.ts";
import type { Pools } from "../pool/pool.ts";
import { NETWORK_MODES } from "../vms/forwards.ts";
import type { getVm } from "../vms/inventory.ts";
import type { VmListPage } from "../vms/list.ts";
import { ACTIONS, STATES } from "../vms/state.ts";
import type { hostView } from "./host.ts";
import type { imageView } from "./image.ts";

/**
 * `schema`, declared as producing the resolver's type `T`. Sound because the schema is a
 * loose subset of T checked at every call (tRPC parses outputs): what it passes is T itself.
 */
function documented<T>(schema: z.ZodType): z.ZodType<T> {
  return schema as z.ZodType<T>;
}

/**
 * `schema`, whose parse hands a value it has passed before back as it is. vm.list answers
 * every caller of one inventory snapshot with the same page object, never changed after it
 * is made: one check of it is enough, and handing it back (not a copy) lets the HTTP layer
 * serialize it once for all of them (api/responses.ts). The schema keeps every key of what
 * it passes, so the value itself is what its parse would give.
 */
function checkedOnce<S extends z.ZodType>(schema: S): S {
  const passed = new WeakSet<object>();
  const parseAsync = schema.parseAsync.bind(schema);
  schema.parseAsync = async (value, params) => {
    if (typeof value !== "object" || value === null) return parseAsync(value, params);
    if (!passed.has(value)) {
      await parseAsync(value, params);
      passed.add(value);
    }
    return value as z.output<S>;
  };
  return schema;
}

const portForward = z.looseObject({
  guestPort: z.number().int(),
  hostPort: z.number().int().meta({ description: "As configured; 0 takes any free port." }),
  boundPort: z.number().int().nullable().meta({ description: "The host port in use while the VM runs." }),
});

const vmFields = {
  id: z.string(),
  name: z.string(),
  state: z.enum(STATES),
  imageId: z.string(),
  cpus: z.number().int(),
  memoryMiB: z.number().int(),
  diskGiB: z.number().int().nullable(),
  network: z.enum(NETWORK_MODES),
  sshPort: z.number().int().nullable(),
  readyState: z.enum(["booting", "ready", "error"]).nullable().meta({ description: "While the VM runs; null otherwise" }),
  readyDetail: z.string().nullable(),
  error: z.string().nullable(),
  ownerId: z.string().nullable(),
  poolId: z.string().nullable(),
  tags: z.array(z.string()),
  createdAt: z.date().meta({ format: "date-time" }),
  updatedAt: z.date().meta({ format: "date-time" }),
  ports: z.array(portForward),
  actions: z.array(z.enum(ACTIONS.filter((action) => action !== "None"))).meta({ description: "What may be done to it in this state" }),
};

type VmDetail = Awaited<ReturnType<typeof getVm>>;
type Row<M extends "event" | "pool" | "portForward"> = Awaited<ReturnType<Db[M]["findFirstOrThrow"]>>;
type Event = Row<"event">;
type Pool = Row<"pool">;
type PortForward = Row<"portForward">;
type Images = ReturnType<typeof createImages>;

export const vmRowOutput = z.looseObject(vmFields).meta({ id: "VmRow" });
export const vmListOutput = documented<VmListPage>(
  // After meta: meta gives a new schema, with zod's own parse.
  checkedOnce(
    z
      .looseObject({
        items: z.array(vmRowOutput),
        nextCursor: z.string().nullable().meta({ description: "Pass as cursor, with the same filters and sort, for the next page; null on the last" }),
        total: z.number().int().meta({ description: "How many VMs match the filters" }),
      })
      .meta({ id: "VmPage" }),
  ),
);
export const vmOutput = documented<VmDetail>(
  z.looseObject({ ...vmFields, serialTail: z.string().meta({ description: "The end of the serial console's output" }) }).meta({ id: "Vm" }),
);
export const serialTailOutput = z
  .object({ text: z.string().meta({ description: "The last 16 KiB the serial console printed (empty while the VM's host is offline)" }) })
  .meta({ id: "VmSerialTail" });
export const addressesOutput = z
  .object({
    interfaces: z
      .array(
        z.object({
          name: z.string(),
          mac: z.string().nullable(),
          addresses: z.array(z.object({ family: z.enum(["ipv4", "ipv6"]), address: z.string(), prefix: z.number().int() })),
        }),
      )
      .nullable(),
    detail: z.string(),
  })
  .meta({ id: "VmAddresses" });
export const deletedOutput = z.object({ id: z.string() }).meta({ id: "VmDeleted" });
export const execOutput = z
  .object({
    stdout: z.string(),
    stderr: z.string(),
    exitCode: z.number().int(),
    truncated: z.boolean().meta({ description: "Output past 1 MiB was cut off" }),
  })
  .meta({ id: "ExecResult" });

/**
 * A count of bytes the database keeps as a BigInt. tRPC (superjson) carries it as a bigint,
 * as ever; REST answers it as a JSON integer (restJson in api/openapi.ts), exact up to 2^53
 * bytes (8 PiB), past any disk image.
 */
const bytes = (description: string) => z.bigint().meta({ description: `${description}; a JSON integer over REST` });

const imageFields = {
  id: z.string(),
  name: z.string(),
  path: z.string().nullable().meta({ description: "The disk's host path: for admins; null for everyone else" }),
  format: z.string().meta({ description: "qcow2, raw or iso" }),
  sha256: z.string().nullable(),
  sizeBytes: bytes("The disk's size in bytes (while importing: the size expected, 0 when unknown)"),
  kernel: z.string().nullable().meta({ description: "Direct kernel boot's host path: for admins; null for everyone else" }),
  initrd: z.string().nullable().meta({ description: "Direct kernel boot's host path: for admins; null for everyone else" }),
  cmdline: z.string().nullable(),
  loginUser: z.string().meta({ description: "The guest account Hangar logs in as (exec, sync, readiness)" }),
  firmware: z.enum(FIRMWARES),
  status: z.enum(["ready", "importing", "failed"]),
  progress: bytes("Bytes received so far while it imports"),
  error: z.string().nullable().meta({ description: "Why its import failed" }),
  createdAt: z.date().meta({ format: "date-time" }),
  directBoot: z.boolean().meta({ description: "Whether it boots a kernel directly rather than through the firmware" }),
};

type ImageView = ReturnType<typeof imageView>;
const imageSchema = z.looseObject(imageFields).meta({ id: "Image" });
export const imageListOutput = documented<ImageView[]>(z.array(imageSchema));
export const imageOutput = documented<ImageView & Awaited<ReturnType<Images["usersOf"]>>>(
  z
    .looseObject({
      ...imageFields,
      vms: z
        .array(z.object({ id: z.string(), name: z.string(), state: z.enum(STATES) }))
        .meta({ description: "VMs made from it or with it in their CD-ROM drive" }),
      pools: z.array(z.object({ id: z.string(), name: z.string() })),
    })
    .meta({ id: "ImageDetail" }),
);
/** An image row as an import or a publish makes it (admins only: paths included). */
export const importedImageOutput = documented<Awaited<ReturnType<Images["importImage"]>>>(
  z.looseObject({ ...imageFields, directBoot: imageFields.directBoot.optional() }).meta({ id: "ImportedImage" }),
);
export const imageDeletedOutput = z.object({ id: z.string() }).meta({ id: "ImageDeleted" });

export const snapshotListOutput = z
  .array(
    z
      .object({
        name: z.string(),
        vmStateBytes: z.number().int().meta({ description: "Bytes of VM state saved with it (0 for a disk-only snapshot, taken while Stopped)" }),
        createdAt: z.date().meta({ format: "date-time" }),
      })
      .meta({ id: "Snapshot" }),
  )
  .meta({ description: "The VM's snapshots after the change" });

const eventSchema = z
  .looseObject({
    id: z.string(),
    stream: z.enum(STREAMS),
    actor: z.string().meta({ description: "A user, a token, or system / reconciler" }),
    action: z.string().meta({ description: "start, stop, snapshot-create, sign-in…" }),
    vmId: z.string().nullable(),
    vmName: z.string().nullable().meta({ description: "The VM's name then: events outlive deleted VMs" }),
    target: z.string().nullable(),
    userId: z.string().nullable(),
    fromState: z.string().nullable(),
    toState: z.string().nullable(),
    ok: z.boolean(),
    message: z.string(),
    requestId: z.string().nullable(),
    createdAt: z.date().meta({ format: "date-time" }),
  })
  .meta({ id: "Event" });
export const eventPageOutput = documented<{ events: Event[]; nextCursor: string | undefined }>(
  z
    .object({
      events: z.array(eventSchema).meta({ description: "Newest first" }),
      nextCursor: z.string().optional().meta({ description: "Pass as cursor, with the same filters, for the next page; absent on the last" }),
    })
    .meta({ id: "EventPage" }),
);

const poolFields = {
  id: z.string(),
  name: z.string(),
  imageId: z.string(),
  cpus: z.number().int(),
  memoryMiB: z.number().int(),
  userData: z.string().nullable(),
  size: z.number().int().meta({ description: "How many VMs it keeps waiting" }),
  staging: z.enum(STAGING_STATES).meta({ description: "The state its waiting VMs are kept in" }),
  hostId: z.string().nullable(),
  deletingAt: z.date().meta({ format: "date-time" }).nullable(),
  createdAt: z.date().meta({ format: "date-time" }),
};
export const poolOutput = documented<Pool>(z.looseObject(poolFields).meta({ id: "Pool" }));
export const poolListOutput = documented<Awaited<ReturnType<Pools["listPools"]>>>(
  z.array(
    z
      .looseObject({
        ...poolFields,
        image: z.object({ name: z.string() }),
        vms: z.array(z.looseObject({ id: z.string(), name: z.string(), state: z.enum(STATES), acquiredAt: z.date().meta({ format: "date-time" }).nullable() })),
        ready: z.number().int().meta({ description: "Members waiting, ready to hand out" }),
        filling: z.boolean(),
        deleting: z.boolean(),
      })
      .meta({ id: "PoolWithMembers" }),
  ),
);
export const poolDeletedOutput = z.object({ id: z.string() }).meta({ id: "PoolDeleted" });
export const hostListOutput = documented<ReturnType<typeof hostView>[]>(
  z.array(
    z
      .looseObject({
        id: z.string().meta({ description: "What vm.create and pool.create take as hostId" }),
        name: z.string(),
        online: z.boolean().meta({ description: "It has beaten within HANGAR_HOST_OFFLINE_AFTER_SEC" }),
        heartbeatAt: z.date().meta({ format: "date-time" }),
        accelerator: z.string().meta({ description: "kvm or tcg; undecided while its start-up probe runs" }),
        qemuVersion: z
          .string()
          .meta({ description: "Its qemu's version; empty until known. A Suspended VM moves only between hosts of one version and accelerator" }),
        cpus: z.number().int(),
        memoryMiB: z.number().int(),
        memoryLimitMiB: z.number().int().meta({ description: "The memory its VMs may take in all" }),
        allocatedCpus: z.number().int().meta({ description: "vCPUs its running VMs take" }),
        allocatedMemoryMiB: z.number().int().meta({ description: "Memory its running VMs take" }),
        sshAddress: z.string().meta({ description: "Where its VMs' forwarded ports are reached" }),
        bridges: z.array(z.string()).meta({ description: "Host bridges its VMs may join" }),
        apiAddress: z.string().nullable().meta({ description: "Where other hosts call it (admins; null for others)" }),
        maintenanceSince: z.date().nullable().meta({ format: "date-time", description: "Since when it takes no VMs (host.evacuate); null: it takes VMs" }),
      })
      .meta({ id: "Host" }),
  ),
);
export const relocationOutput = z
  .object({
    host: z.string().meta({ description: "The host evacuated or restored" }),
    moved: z.array(
      z.object({
        id: z.string(),
        name: z.string(),
        to: z.string().meta({ description: "The host it went to" }),
        restarted: z.boolean().meta({ description: "It ran before and runs again there" }),
        problem: z.string().nullable().meta({ description: "What went wrong after it moved, or null" }),
      }),
    ),
    stayed: z.array(z.object({ id: z.string(), name: z.string(), reason: z.string() })),
  })
  .meta({ id: "Relocation" });
export const acquiredOutput = z
  .object({
    vmId: z.string(),
    name: z.string(),
    host: z.string().meta({ description: "Where to SSH" }),
    sshPort: z.number().int(),
    user: z.string(),
    privateKey: z.string().optional().meta({ description: "The VM's own private key (OpenSSH), for this caller alone; absent when publicKey was given" }),
  })
  .meta({ id: "AcquiredVm" });
export const releasedOutput = z.object({ vmId: z.string() }).meta({ id: "ReleasedVm" });

export const forwardOutput = documented<PortForward>(z.looseObject({ ...portForward.shape, id: z.string(), vmId: z.string() }).meta({ id: "PortForward" }));
export const forwardRemovedOutput = z.object({ guestPort: z.number().int() }).meta({ id: "PortForwardRemoved" });
export const diskOutput = z
  .object({
    virtualBytes: z.number().int().meta({ description: "The disk's size as the guest sees it" }),
    actualBytes: z.number().int().meta({ description: "What it takes on the host" }),
  })
  .nullable()
  .meta({ id: "Disk", description: "null when the disk could not be read" });

export const syncOutput = z
  .object({
    from: z.string().meta({ description: "As given: under the sync root of the VM's host" }),
    to: z.string().meta({ description: "As given: the path in the VM" }),
  })
  .meta({ id: "VmSynced" });

const tokenFields = {
  id: z.string(),
  name: z.string(),
  prefix: z.string().meta({ description: "The token's first characters, to tell it apart; never the whole token" }),
  expiresAt: z.date().meta({ format: "date-time" }).nullable().meta({ description: "null: it does not expire" }),
  readOnly: z.boolean().meta({ description: "Reads only: every change made with it is refused" }),
};
export const tokenListOutput = documented<Awaited<ReturnType<typeof listTokens>>>(
  z.array(
    z
      .looseObject({
        ...tokenFields,
        lastUsedAt: z.date().meta({ format: "date-time" }).nullable(),
        revokedAt: z.date().meta({ format: "date-time" }).nullable(),
        createdAt: z.date().meta({ format: "date-time" }),
      })
      .meta({ id: "Token" }),
  ),
);
export const createdTokenOutput = documented<Awaited<ReturnType<typeof createToken>>>(
  z
    .looseObject({
      ...tokenFields,
      token: z.string().meta({ description: "The token itself (Authorization: Bearer <token>), shown this once: Hangar keeps only its hash" }),
    })
    .meta({ id: "CreatedToken" }),
);
export const revokedTokenOutput = z
  .object({ id: z.string(), revokedAt: z.date().meta({ format: "date-time" }).nullable() })
  .meta({ id: "RevokedToken", description: "The token, revoked from revokedAt on (the first revoke's time when it was already revoked)" });

type User = Awaited<ReturnType<typeof listUsers>>[number];
const userSchema = z
  .looseObject({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    role: z.enum(ROLES),
    disabled: z.boolean().meta({ description: "A disabled user cannot sign in, and their tokens stop working" }),
    maxVms: z.number().int().nullable().meta({ description: "Quota on their VMs; null: no limit" }),
    maxCpus: z.number().int().nullable().meta({ description: "Quota on the vCPUs of their VMs; null: no limit" }),
    maxMemoryMiB: z.number().int().nullable().meta({ description: "Quota on the memory of their VMs, in MiB; null: no limit" }),
    createdAt: z.date().meta({ format: "date-time" }),
  })
  .meta({ id: "User" });
export const userListOutput = documented<User[]>(z.array(userSchema));
export const userOutput = documented<User>(userSchema);
export const userIdOutput = z.object({ id: z.string() }).meta({ id: "UserId" });

export const meOutput = documented<{ user: (Principal & { label: string }) | null; needsFirstAdmin: boolean }>(
  z
    .looseObject({
      user: z
        .looseObject({
          userId: z.string(),
          email: z.string(),
          role: z.enum(ROLES),
          via: z.enum(["session", "token"]).meta({ description: "How the caller signed in: a browser session or an API token" }),
          tokenId: z.string().optional().meta({ description: "The token's id, when via is token" }),
          tokenName: z.string().optional(),
          readOnly: z.boolean().optional().meta({ description: "true for a read-only token" }),
          label: z.string().meta({ description: "How the caller shows in events: an email, or token <name> (<email>)" }),
        })
        .nullable()
        .meta({ description: "null without a valid session or token" }),
      needsFirstAdmin: z.boolean().meta({ description: "No user exists yet" }),
    })
    .meta({ id: "Me" }),
);

const sshKeyFields = {
  id: z.string(),
  name: z.string(),
  fingerprint: z.string().meta({ description: "SHA256:… as ssh-keygen -l prints it" }),
};
const sshKeySchema = z
  .looseObject({ ...sshKeyFields, publicKey: z.string().meta({ description: "The key's type and data" }), createdAt: z.date().meta({ format: "date-time" }) })
  .meta({ id: "SshKey" });
export const sshKeyListOutput = documented<Awaited<ReturnType<typeof listSshKeys>>>(z.array(sshKeySchema));
export const sshKeyOutput = documented<Awaited<ReturnType<typeof addSshKey>>>(sshKeySchema);
export const sshKeyRemovedOutput = z.object(sshKeyFields).meta({ id: "SshKeyRemoved" });
