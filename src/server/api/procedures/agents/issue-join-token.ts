// Issues a join token that admits new agents (to the whole pool, or to one node name). The secret is in this
// answer only; the coordinator stores its sha256.
import { issuedJoinToken, issueJoinTokenInput, joinTokensOf } from '../../agents-dto';
import { defineMutation } from '../../procedure';

export const issueJoinToken = defineMutation({
  input: issueJoinTokenInput.optional(),
  output: issuedJoinToken,
  rest: { method: 'POST', path: '/api/join-tokens', status: 201, body: true },
  access: 'operator',
  resolve: ({ ctx, input }) => joinTokensOf(ctx).issue(input ?? {}),
});
