import type { Db } from "../db.ts";
import { z } from "zod";
import { HangarError } from "../errors.ts";
import { imageDeletedOutput, imageListOutput, imageOutput, importedImageOutput } from "./outputs.ts";
import { id, importImageInput } from "./schemas.ts";
import { auditChange, procedure, router, restRoutes } from "./trpc.ts";

const rest = restRoutes("image");

type Image = Awaited<ReturnType<Db["image"]["findMany"]>>[number];

/** Absolute host paths inside a sentence (not the path part of a URL). */
const HOST_PATH = /(?<![\w:/.])\/[^\s"'`,;)]+/g;

/**
 * An image as a caller may see it: admins get the host paths of the disk, kernel and initrd;
 * everyone else gets whether it boots a kernel directly, and errors without paths.
 */
export function imageView(image: Image, isAdmin: boolean) {
  const directBoot = image.kernel !== null;
  if (isAdmin) return { ...image, directBoot };
  return { ...image, path: null, kernel: null, initrd: null, error: image.error?.replace(HOST_PATH, "…") ?? null, directBoot };
}

/** A URL as the audit log keeps it: no credentials, no query (signed URLs carry their key there). */
export function withoutSecrets(url: string): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}

export const imageRouter = router({
  list: procedure
    .meta({ permission: "read", openapi: rest("GET", "/images", "Every image") })
    .output(imageListOutput)
    .query(async ({ ctx }) => {
      const images = await ctx.hangar.db.image.findMany({ orderBy: { createdAt: "asc" } });
      const isAdmin = ctx.principal?.role === "admin";
      return images.map((image) => imageView(image, isAdmin));
    }),
  /** One image, and what uses it (VMs, pools). */
  get: procedure
    .meta({ permission: "read", openapi: rest("GET", "/images/{id}", "One image, and the VMs and pools that use it") })
    .input(z.object({ id }))
    .output(imageOutput)
    .query(async ({ ctx, input }) => {
      const image = await ctx.hangar.db.image.findUnique({ where: { id: input.id } });
      if (!image) throw new HangarError("NOT_FOUND", `No image with id "${input.id}".`);
      return { ...imageView(image, ctx.principal?.role === "admin"), ...(await ctx.hangar.images.usersOf(image.id)) };
    }),
  /** Refused while VMs or pools use it. */
  delete: procedure
    .meta({ permission: "admin", openapi: rest("POST", "/images/{id}/delete", "Delete an image nothing uses (admins)") })
    .input(z.object({ id }))
    .output(imageDeletedOutput)
    .mutation(async ({ ctx, input }) => {
      const image = await ctx.hangar.db.image.findUnique({ where: { id: input.id }, select: { name: true } });
      const deleted = await ctx.hangar.images.deleteImage(input.id);
      await auditChange(ctx, { action: "image-delete", message: `Deleted image ${image?.name ?? input.id}`, target: image?.name ?? input.id });
      return deleted;
    }),
  /**
   * From a url (fetched in the background: poll GET /images/{id} until status is ready or
   * failed) or a file under the images directory (imported before the answer).
   */
  import: procedure
    .meta({ permission: "admin", openapi: rest("POST", "/images", "Import an image from a url or a file under the images directory (admins)") })
    .input(importImageInput)
    .output(importedImageOutput)
    .mutation(async ({ ctx, input }) => {
      const image = await ctx.hangar.images.importImage(input);
      await auditChange(ctx, {
        action: "image-import",
        message: input.url
          ? `Began importing image ${image.name} from ${withoutSecrets(input.url)}`
          : `Imported image ${image.name} from file ${input.path ?? ""}`,
        target: image.name,
      });
      return image;
    }),
});
