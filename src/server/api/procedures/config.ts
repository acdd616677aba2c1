// GET /api/config: what a new session may be: the defaults of every setting, the bounds the start input
// enforces, the models, optimizers and aggregation rules, and the registered datasets. The session form is
// built from it, and a script can read the same before it starts one.
import { z } from 'zod';
import { DEFAULT_SESSION_CONFIG } from '../../core/session-config';
import { sessionConfig } from '../dto';
import { SETTING_BOUNDS } from '../inputs';
import { defineQuery } from '../procedure';

export const config = defineQuery({
  input: null,
  output: z.object({
    defaults: sessionConfig,
    bounds: z.record(z.string(), z.number()),
    models: z.array(z.string()),
    optimizers: z.array(z.string()),
    aggregationRules: z.array(z.string()),
    datasets: z.array(z.string()),
  }),
  rest: { method: 'GET', path: '/api/config' },
  resolve: async ({ ctx }) => ({
    defaults: DEFAULT_SESSION_CONFIG,
    bounds: { ...SETTING_BOUNDS },
    models: ['mlp', 'cnn', 'mlp2nn'],
    optimizers: ['sgd', 'adam'],
    aggregationRules: ['mean', 'median', 'trimmed-mean', 'multi-krum'],
    datasets: (await ctx.control.datasets()).filter((d) => !('error' in d)).map((d) => d.id),
  }),
});
