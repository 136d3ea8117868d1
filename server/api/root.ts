import { imageRouter } from "./image.ts";
import { snapshotRouter } from "./snapshot.ts";
import { createCallerFactory, router } from "./trpc.ts";
import { vmRouter } from "./vm.ts";

export const appRouter = router({
  vm: vmRouter,
  image: imageRouter,
  snapshot: snapshotRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
