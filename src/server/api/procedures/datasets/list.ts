// The datasets this coordinator registered at start (--dataset name=path, HYPERGPU_DATASETS; mnist is built in),
// by id with their sizes: what POST /api/training/start accepts as `dataset`. Folders are never shown.
import { z } from 'zod';

import { defineQuery } from '../../procedure';

const datasetListing = z.union([
  z.object({
    id: z.string(),
    trainSize: z.number().int().nonnegative(),
    testSize: z.number().int().nonnegative(),
    inputShape: z.array(z.number().int().nonnegative()),
  }),
  z.object({ id: z.string(), error: z.string() }),
]);

export const list = defineQuery({
  input: null,
  output: z.array(datasetListing),
  access: 'public',
  rest: { method: 'GET', path: '/api/datasets', envelope: 'datasets' },
  resolve: ({ ctx }) => ctx.control.datasets(),
});
