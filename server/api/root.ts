import { imageRouter } from "./image.ts";
import { createCallerFactory, router } from "./trpc.ts";
import { vmRouter } from "./vm.ts";

export const appRouter = router({
  vm: vmRouter,
  image: imageRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
