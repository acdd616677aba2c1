// The chain this coordinator settles on and where settlement stands: chain id, contract, the session's last
// settled epoch, and totals (ledger, and funded / committed / claimed as the contract says).
import { defineQuery } from '../../procedure';
import { chainSessionDto, rewardsOf, str } from '../../rewards-dto';

export const session = defineQuery({
  input: null,
  output: chainSessionDto,
  rest: { method: 'GET', path: '/api/blockchain/session' },
  resolve: async ({ ctx }) => {
    const s = await rewardsOf(ctx).session();
    return {
      chainId: s.chain?.chainId ?? null,
      contractAddress: s.chain?.contractAddress ?? null,
      rpcUrl: s.chain?.rpcUrl ?? null,
      mode: s.chain?.mode ?? null,
      owner: s.chain?.owner ?? null,
      sessionId: s.sessionId,
      lastSettledEpoch: s.lastSettledEpoch,
      lastSettledSeq: s.lastSettledSeq,
      pendingSettlements: s.pendingSettlements,
      totals: { ledger: s.ledgerTotal.toString(), funded: str(s.totals?.totalFunded ?? null), committed: str(s.totals?.totalCommitted ?? null), claimed: str(s.totals?.totalClaimed ?? null) },
      chainError: s.chainError,
    };
  },
});
