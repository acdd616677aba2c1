// Plans one epoch's settlement from its payable amounts and everyone's cumulative amounts so far: the new
// cumulative leaves (every address ever paid keeps a leaf, so the newest root alone lets anyone claim all it is
// owed) and the amount this settlement adds. Pure.
import type { Address } from 'viem';
import { buildMerkleTree, type MerkleTree } from './merkle';
import type { NodeAmount } from './policy';

export interface SettlementPlan {
  tree: MerkleTree;
  /** Base units added by this epoch. */
  total: bigint;
  /** Each paid node's amount, payout address and its address's new cumulative amount. */
  paid: { nodeId: number; samples: number; amount: bigint; address: string; cumulative: bigint }[];
}

export function planSettlement(
  amounts: readonly NodeAmount[],
  payoutAddress: (nodeId: number) => string,
  previous: ReadonlyMap<string, bigint>,
): SettlementPlan | null {
  const cumulative = new Map<string, bigint>(previous);
  let total = 0n;
  for (const n of amounts) {
    const address = payoutAddress(n.nodeId).toLowerCase();
    cumulative.set(address, (cumulative.get(address) ?? 0n) + n.amount);
    total += n.amount;
  }
  const leaves = [...cumulative.entries()].filter(([, amount]) => amount > 0n).map(([account, amount]) => ({ account: account as Address, cumulativeAmount: amount }));
  if (leaves.length === 0) return null;
  const tree = buildMerkleTree(leaves);
  const paid = amounts.map((n) => {
    const address = payoutAddress(n.nodeId).toLowerCase();
    return { nodeId: n.nodeId, samples: n.samples, amount: n.amount, address, cumulative: cumulative.get(address) ?? 0n };
  });
  return { tree, total, paid };
}
