import { imageRouter } from "./image.ts";
import { poolRouter } from "./pool.ts";
import { snapshotRouter } from "./snapshot.ts";
import { createCallerFactory, router } from "./trpc.ts";
import { vmRouter } from "./vm.ts";

export const appRouter = router({
  vm: vmRouter,
  image: imageRouter,
  snapshot: snapshotRouter,
  pool: poolRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
