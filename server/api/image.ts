import { importImageInput } from "./schemas.ts";
import { publicProcedure, router } from "./trpc.ts";

export const imageRouter = router({
  list: publicProcedure.query(({ ctx }) => ctx.hangar.db.image.findMany({ orderBy: { createdAt: "asc" } })),
  import: publicProcedure.input(importImageInput).mutation(({ ctx, input }) => ctx.hangar.images.importImage(input)),
});
