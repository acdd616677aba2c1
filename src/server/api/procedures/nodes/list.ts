// Every node the coordinator knows, by id: status and reason, capabilities, heartbeat, credited work.
import { z } from 'zod';
import { nodeSnapshot } from '../../dto';
import { defineQuery } from '../../procedure';

export const list = defineQuery({
  input: null,
  output: z.array(nodeSnapshot),
  rest: { method: 'GET', path: '/api/nodes', envelope: 'nodes' },
  resolve: ({ ctx }) => ctx.control.nodes(),
});
