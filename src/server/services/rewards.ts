// Read side of rewards for the API and the Rewards page: what an address earned, what is on chain, what it
// may claim and the proof to claim it with, the chain's totals, and the leaderboard. Proofs are rebuilt from the
// ledger and checked against the root it committed, so a proof handed out always verifies on chain.
import { RequestError } from '../../protocol/errors';
import { buildMerkleTree, type MerkleTree } from '../core/rewards/merkle';
import type { ChainInfo, ContractTotals, RewardsRepository, SettlementChain, SettlementRecord } from '../core/rewards/ports';

export interface AddressRewards {
  address: string;
  earned: bigint;
  committed: bigint;
  claimed: bigint | null;
  claimable: bigint | null;
  /** The settlement to claim against (the newest committed one holding this address), with its proof. */
  claim: { seq: number; cumulativeAmount: bigint; proof: string[] } | null;
  epochs: { seq: number; sessionId: number; epoch: number; nodeName: string; samples: number; amount: bigint; status: string; reason: string | null }[];
}

export interface ChainSession {
  chain: ChainInfo | null;
  totals: ContractTotals | null;
  /** Why totals are missing (the chain is unreachable), if they are. */
  chainError: string | null;
  sessionId: number | null;
  lastSettledEpoch: number | null;
  lastSettledSeq: number | null;
  pendingSettlements: number;
  ledgerTotal: bigint;
}

export class RewardsService {
  constructor(
    private readonly repo: RewardsRepository,
    private readonly chain: SettlementChain | null,
    private readonly currentSession: () => number | null,
  ) {}

  async session(): Promise<ChainSession> {
    const all = await this.repo.settlements();
    const sessionId = this.currentSession();
    const committed = all.filter((s) => s.status === 'committed');
    const ofSession = committed.filter((s) => s.sessionId === sessionId);
    let totals: ContractTotals | null = null;
    let chainError: string | null = null;
    if (this.chain) {
      try {
        totals = await this.chain.totals();
      } catch (error) {
        chainError = error instanceof Error ? error.message.split('\n')[0]!.slice(0, 200) : String(error);
      }
    }
    return {
      chain: this.chain?.info ?? null,
      totals,
      chainError,
      sessionId,
      lastSettledEpoch: ofSession.length ? ofSession[ofSession.length - 1]!.epoch : null,
      lastSettledSeq: committed.length ? committed[committed.length - 1]!.seq : null,
      pendingSettlements: all.length - committed.length,
      ledgerTotal: all.reduce((sum, s) => sum + s.total, 0n),
    };
  }

  async forAddress(address: string): Promise<AddressRewards> {
    const lower = address.toLowerCase();
    const entries = await this.repo.entriesForAddress(lower);
    const settlements = new Map((await this.repo.settlements()).map((s) => [s.seq, s]));
    const epochs = entries.map((e) => ({
      seq: e.seq,
      sessionId: settlements.get(e.seq)?.sessionId ?? 0,
      epoch: settlements.get(e.seq)?.epoch ?? 0,
      nodeName: e.nodeName,
      samples: e.samples,
      amount: e.amount,
      status: settlements.get(e.seq)?.status ?? 'pending',
      reason: e.reason,
    }));
    const earned = epochs.reduce((sum, e) => sum + e.amount, 0n);
    const committed = epochs.filter((e) => e.status === 'committed').reduce((sum, e) => sum + e.amount, 0n);
    const lastPaid = [...entries].reverse().find((e) => e.reason === null && settlements.get(e.seq)?.status === 'committed');
    let claimed: bigint | null = null;
    try {
      claimed = this.chain ? await this.chain.claimed(lower) : null;
    } catch {
      claimed = null;
    }
    let claim: AddressRewards['claim'] = null;
    if (lastPaid) {
      // The newest committed root holds every address's cumulative amount: claiming against it pays everything.
      const newest = [...settlements.values()].filter((s) => s.status === 'committed').at(-1)!;
      const proof = await this.proof(lower, newest.seq);
      claim = { seq: newest.seq, cumulativeAmount: proof.cumulativeAmount, proof: proof.proof };
    }
    const claimable = claim && claimed !== null ? (claim.cumulativeAmount > claimed ? claim.cumulativeAmount - claimed : 0n) : null;
    return { address: lower, earned, committed, claimed, claimable, claim, epochs };
  }

  /**
   * One node's settled epochs, keyed "session/epoch": what the committed settlement paid it (base units), and how
   * much of that its address has claimed (all of it once the contract's claimed total reaches the entry's
   * cumulative leaf; null when the chain cannot be asked). For the node's "why did I earn this" timeline.
   */
  async nodeSettlements(nodeId: number): Promise<Map<string, { settled: string; claimed: string | null }>> {
    const entries = (await this.repo.allEntries()).filter((e) => e.nodeId === nodeId);
    const settlements = new Map((await this.repo.settlements()).map((s) => [s.seq, s]));
    const claimedBy = new Map<string, bigint | null>();
    const out = new Map<string, { settled: string; claimed: string | null }>();
    for (const e of entries) {
      const settlement = settlements.get(e.seq);
      if (!settlement || settlement.status !== 'committed') continue;
      let claimed: bigint | null = null;
      if (e.address && this.chain) {
        if (!claimedBy.has(e.address)) claimedBy.set(e.address, await this.chain.claimed(e.address).catch(() => null));
        claimed = claimedBy.get(e.address) ?? null;
      }
      out.set(`${settlement.sessionId}/${settlement.epoch}`, {
        settled: e.amount.toString(),
        claimed: claimed === null ? null : claimed >= e.cumulative ? e.amount.toString() : '0',
      });
    }
    return out;
  }

  /** The proof of `address`'s leaf in settlement `seq`. */
  async proof(address: string, seq: number): Promise<{ seq: number; root: string; cumulativeAmount: bigint; proof: string[] }> {
    const settlement = (await this.repo.settlements()).find((s) => s.seq === seq);
    if (!settlement) throw new RequestError('NOT_FOUND', `settlement #${seq} does not exist`);
    const tree = await this.treeOf(settlement);
    const lower = address.toLowerCase();
    const leaf = tree.leaves.find((l) => l.account.toLowerCase() === lower);
    const proof = tree.proof(lower as `0x${string}`);
    if (!leaf || !proof) throw new RequestError('NOT_FOUND', `address ${lower} has no leaf in settlement #${seq}`);
    return { seq, root: tree.root, cumulativeAmount: leaf.cumulativeAmount, proof };
  }

  private async treeOf(settlement: SettlementRecord): Promise<MerkleTree> {
    const cumulative = new Map<string, bigint>();
    for (const e of await this.repo.paidEntriesUpTo(settlement.seq)) cumulative.set(e.address!, e.cumulative);
    const tree = buildMerkleTree([...cumulative.entries()].filter(([, v]) => v > 0n).map(([account, cumulativeAmount]) => ({ account: account as `0x${string}`, cumulativeAmount })));
    if (tree.root.toLowerCase() !== settlement.root.toLowerCase()) {
      throw new Error(`settlement #${settlement.seq}: the ledger's leaves give root ${tree.root}, not the committed ${settlement.root}`);
    }
    return tree;
  }

  async leaderboard(): Promise<{ nodeId: number; nodeName: string; address: string | null; samples: number; amount: bigint; forfeitedSamples: number }[]> {
    const byNode = new Map<number, { nodeId: number; nodeName: string; address: string | null; samples: number; amount: bigint; forfeitedSamples: number }>();
    for (const e of await this.repo.allEntries()) {
      const row = byNode.get(e.nodeId) ?? { nodeId: e.nodeId, nodeName: e.nodeName, address: e.address, samples: 0, amount: 0n, forfeitedSamples: 0 };
      if (e.reason === null) {
        row.samples += e.samples;
        row.amount += e.amount;
      } else row.forfeitedSamples += e.samples;
      row.address = e.address ?? row.address;
      byNode.set(e.nodeId, row);
    }
    return [...byNode.values()].sort((a, b) => (b.amount > a.amount ? 1 : b.amount < a.amount ? -1 : b.samples - a.samples));
  }
}
