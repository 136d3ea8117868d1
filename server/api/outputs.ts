/**
 * Output schemas of the procedures served as REST (server/api/openapi.ts), which describe
 * their responses in the OpenAPI document. Each names the fields a REST caller relies on
 * and lets the rest through unchanged (loose objects): the procedure's TypeScript type stays
 * the resolver's own, so tRPC callers (the dashboard, hangar/client) see every field.
 */
import { z } from "zod";
import { NETWORK_MODES } from "../vms/forwards.ts";
import { ACTIONS, STATES } from "../vms/state.ts";
import type { getVm } from "../vms/inventory.ts";
import type { VmListPage } from "../vms/list.ts";

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
