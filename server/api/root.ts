import { accountRouter } from "./account.ts";
import { auditRouter } from "./audit.ts";
import { hostRouter } from "./host.ts";
import { imageRouter } from "./image.ts";
import { metricsRouter } from "./metrics.ts";
import { poolRouter } from "./pool.ts";
import { snapshotRouter } from "./snapshot.ts";
import { terminalRouter } from "./terminal.ts";
import { tokenRouter } from "./token.ts";
import { createCallerFactory, router } from "./trpc.ts";
import { userRouter } from "./user.ts";
import { vmRouter } from "./vm.ts";

export const appRouter = router({
  vm: vmRouter,
  image: imageRouter,
  snapshot: snapshotRouter,
  pool: poolRouter,
  account: accountRouter,
  user: userRouter,
  token: tokenRouter,
  audit: auditRouter,
  host: hostRouter,
  terminal: terminalRouter,
  metrics: metricsRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
