// Nodes by verified (settled) contribution, best first.
import { defineQuery } from '../../procedure';
import { leaderboardDto, rewardsOf } from '../../rewards-dto';

export const leaderboard = defineQuery({
  input: null,
  output: leaderboardDto,
  rest: { method: 'GET', path: '/api/blockchain/leaderboard', envelope: 'nodes' },
  resolve: async ({ ctx }) => (await rewardsOf(ctx).leaderboard()).map((n) => ({ ...n, amount: n.amount.toString() })),
});
