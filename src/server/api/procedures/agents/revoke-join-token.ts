// Revokes a join token: no new agent is admitted with it from now on. Nodes it already admitted keep their
// own node secrets (revoking does not disconnect them). NOT_FOUND for an unknown id; revoking twice is a no-op.
import { joinTokenRecord, joinTokensOf } from '../../agents-dto';
import { idInput } from '../../inputs';
import { defineMutation } from '../../procedure';

export const revokeJoinToken = defineMutation({
  input: idInput,
  output: joinTokenRecord,
  rest: { method: 'POST', path: '/api/join-tokens/:id/revoke' },
  access: 'operator',
  resolve: ({ ctx, input }) => joinTokensOf(ctx).revoke(input.id),
});
