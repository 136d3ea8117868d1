import type { Db } from "../db.ts";
import { z } from "zod";
import { HangarError } from "../errors.ts";
import { id, importImageInput } from "./schemas.ts";
import { procedure, router } from "./trpc.ts";

type Image = Awaited<ReturnType<Db["image"]["findMany"]>>[number];

/** Absolute host paths inside a sentence (not the path part of a URL). */
const HOST_PATH = /(?<![\w:/.])\/[^\s"'`,;)]+/g;

/**
 * An image as a caller may see it: admins get the host paths of the disk, kernel and initrd;
 * everyone else gets whether it boots a kernel directly, and errors without paths.
 */
function imageView(image: Image, isAdmin: boolean) {
  const directBoot = image.kernel !== null;
  if (isAdmin) return { ...image, directBoot };
  return { ...image, path: null, kernel: null, initrd: null, error: image.error?.replace(HOST_PATH, "…") ?? null, directBoot };
}

export const imageRouter = router({
  list: procedure.meta({ permission: "read" }).query(async ({ ctx }) => {
    const images = await ctx.hangar.db.image.findMany({ orderBy: { createdAt: "asc" } });
    const isAdmin = ctx.principal?.role === "admin";
    return images.map((image) => imageView(image, isAdmin));
  }),
  /** One image, and what uses it (VMs, pools). */
  get: procedure
    .meta({ permission: "read" })
    .input(z.object({ id }))
    .query(async ({ ctx, input }) => {
      const image = await ctx.hangar.db.image.findUnique({ where: { id: input.id } });
      if (!image) throw new HangarError("NOT_FOUND", `No image with id "${input.id}".`);
      return { ...imageView(image, ctx.principal?.role === "admin"), ...(await ctx.hangar.images.usersOf(image.id)) };
    }),
  /** Refused while VMs or pools use it. */
  delete: procedure
    .meta({ permission: "admin" })
    .input(z.object({ id }))
    .mutation(({ ctx, input }) => ctx.hangar.images.deleteImage(input.id)),
  import: procedure
    .meta({ permission: "admin" })
    .input(importImageInput)
    .mutation(({ ctx, input }) => ctx.hangar.images.importImage(input)),
});
