// Health: each component's state (database, aggregator workers, evaluator, agent channel, and whatever else
// registered: see services/health.ts), the version and the uptime. 503 when a component the coordinator needs
// is down, so a load balancer or a supervisor can act on the status alone.
import { healthReport } from '../dto';
import { defineQuery } from '../procedure';

export const health = defineQuery({
  input: null,
  output: healthReport,
  rest: { method: 'GET', path: '/health', unhealthy: (report) => (report as { status: string }).status === 'down' },
  resolve: async ({ ctx }) => {
    const status = ctx.control.status();
    const startedAt = ctx.startedAt ?? status.startedAt;
    const summary = ctx.health ? await ctx.health.check() : { status: 'ok' as const, components: [] };
    return {
      status: summary.status,
      version: ctx.version ?? '0.0.0',
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      state: status.state,
      components: summary.components,
    };
  },
});
