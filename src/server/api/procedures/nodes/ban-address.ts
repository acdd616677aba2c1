// The operator bans an address: its agent sockets are closed now and its upgrades refused until the ban ends
// (in memory: a restart lifts it). For a node that keeps coming back under new names from one machine.
import { z } from 'zod';
import { RequestError } from '../../../../protocol/errors';
import { banAddressInput } from '../../inputs';
import { defineMutation } from '../../procedure';

export const banAddress = defineMutation({
  input: banAddressInput,
  output: z.object({ address: z.string(), until: z.number(), closedConnections: z.number() }),
  rest: { method: 'POST', path: '/api/bans', body: true },
  resolve: ({ ctx, input }) => {
    if (!ctx.operations) throw new RequestError('CONFLICT', 'this server has no agent gateway to ban addresses at');
    const until = Date.now() + input.seconds * 1000;
    const closedConnections = ctx.operations.banAddress(input.address, until, `banned by the operator: ${input.reason ?? 'no reason given'}`);
    return { address: input.address, until, closedConnections };
  },
});
