import { router } from './trpc';
import { trainingRouter } from './routers/training';
import { nodesRouter } from './routers/nodes';
import { liveRouter } from './routers/live';

export const appRouter = router({
  training: trainingRouter,
  nodes: nodesRouter,
  live: liveRouter,
});

/** The only thing the dashboard imports from the server. */
export type AppRouter = typeof appRouter;
