// Every join token with its state (revoked, expired); never the secrets. Operator-only: labels and bound node
// names say who may join.
import { z } from 'zod';
import { joinTokenRecord, joinTokensOf } from '../../agents-dto';
import { defineQuery } from '../../procedure';

export const joinTokens = defineQuery({
  input: null,
  output: z.array(joinTokenRecord),
  rest: { method: 'GET', path: '/api/join-tokens', envelope: 'joinTokens' },
  access: 'operator',
  resolve: ({ ctx }) => joinTokensOf(ctx).list(),
});
