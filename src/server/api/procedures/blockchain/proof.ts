// The Merkle proof of an address's leaf in one settlement (the contract's epoch number `seq`).
import { z } from 'zod';
import { defineQuery } from '../../procedure';
import { addressInput, proofDto, rewardsOf } from '../../rewards-dto';

export const proof = defineQuery({
  input: addressInput.extend({ seq: z.coerce.number().int().min(1).max(2 ** 53) }),
  output: proofDto,
  rest: { method: 'GET', path: '/api/blockchain/proof', query: ['address', 'seq'] },
  resolve: async ({ ctx, input }) => {
    const p = await rewardsOf(ctx).proof(input.address, input.seq);
    return { ...p, cumulativeAmount: p.cumulativeAmount.toString() };
  },
});
