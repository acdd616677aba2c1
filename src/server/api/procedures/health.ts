// Liveness: the process answers and the coordinator reports a state. Cheap enough to poll every second.
import { healthReport } from '../dto';
import { defineQuery } from '../procedure';

export const health = defineQuery({
  input: null,
  output: healthReport,
  rest: { method: 'GET', path: '/health' },
  resolve: ({ ctx }) => {
    const status = ctx.control.status();
    const startedAt = ctx.startedAt ?? status.startedAt;
    return { status: 'ok' as const, uptimeSeconds: Math.round((Date.now() - startedAt) / 1000), state: status.state };
  },
});
