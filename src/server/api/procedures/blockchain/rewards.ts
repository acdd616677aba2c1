// What one address earned, per epoch, what is committed on chain, claimed and claimable, and the proof to claim with.
import { defineQuery } from '../../procedure';
import { addressInput, addressRewardsDto, rewardsOf, str } from '../../rewards-dto';

export const rewards = defineQuery({
  input: addressInput,
  output: addressRewardsDto,
  // A query parameter, not a path segment: every well-formed address has rewards (maybe none), nothing is "not found".
  rest: { method: 'GET', path: '/api/blockchain/rewards', query: ['address'] },
  resolve: async ({ ctx, input }) => {
    const r = await rewardsOf(ctx).forAddress(input.address);
    return {
      address: r.address,
      earned: r.earned.toString(),
      committed: r.committed.toString(),
      claimed: str(r.claimed),
      claimable: str(r.claimable),
      claim: r.claim ? { seq: r.claim.seq, cumulativeAmount: r.claim.cumulativeAmount.toString(), proof: r.claim.proof } : null,
      epochs: r.epochs.map((e) => ({ ...e, amount: e.amount.toString() })),
    };
  },
});
