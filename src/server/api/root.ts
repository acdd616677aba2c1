// The tRPC router, assembled from the procedure files (procedures/index.ts): one tRPC procedure per definition.
import { procedureTree } from './procedures';
import { router, toTrpcRecord } from './trpc';

export const appRouter = router(toTrpcRecord(procedureTree));

/** The only thing the dashboard imports from the server. */
export type AppRouter = typeof appRouter;
