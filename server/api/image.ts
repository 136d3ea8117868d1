import { importImageInput } from "./schemas.ts";
import { procedure, router } from "./trpc.ts";

export const imageRouter = router({
  list: procedure.meta({ permission: "read" }).query(({ ctx }) => ctx.hangar.db.image.findMany({ orderBy: { createdAt: "asc" } })),
  import: procedure.meta({ permission: "admin" }).input(importImageInput).mutation(({ ctx, input }) => ctx.hangar.images.importImage(input)),
});
