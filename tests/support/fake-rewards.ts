// In-memory RewardsRepository for unit tests: settlements and entries in arrays, node wallets in a map, credits
// set by the test. Behaves like adapters/db/rewards.ts on the points settlement relies on ((session, epoch) and
// seq unique, conditional wallet binding, pending-only updates).
import type { RewardsRepository, SettlementEntryRecord, SettlementRecord } from '../../src/server/core/rewards/ports';
import type { EpochCredit } from '../../src/server/core/rewards/payable';

export interface FakeRewardsRepository extends RewardsRepository {
  credits: Map<string, EpochCredit[]>;
  wallets: Map<number, { name: string; walletAddress: string | null; payoutAddress: string | null }>;
  rows: SettlementRecord[];
  entries: SettlementEntryRecord[];
}

export function createFakeRewardsRepository(): FakeRewardsRepository {
  const credits = new Map<string, EpochCredit[]>();
  const wallets = new Map<number, { name: string; walletAddress: string | null; payoutAddress: string | null }>();
  const rows: SettlementRecord[] = [];
  const entries: SettlementEntryRecord[] = [];
  const nameOf = (nodeId: number) => wallets.get(nodeId)?.name ?? `node-${nodeId}`;
  const sorted = () => [...entries].sort((a, b) => a.seq - b.seq);
  return {
    credits,
    wallets,
    rows,
    entries,
    async nodeWallet(name) {
      for (const [nodeId, w] of wallets) if (w.name === name) return { nodeId, walletAddress: w.walletAddress, payoutAddress: w.payoutAddress };
      return null;
    },
    async bindNodeWallet(nodeId, wallet, payout) {
      const w = wallets.get(nodeId) ?? { name: nameOf(nodeId), walletAddress: null, payoutAddress: null };
      if (w.walletAddress && w.walletAddress !== wallet.toLowerCase()) return false;
      wallets.set(nodeId, { ...w, walletAddress: wallet.toLowerCase(), payoutAddress: payout.toLowerCase() });
      return true;
    },
    async epochCredits(sessionId, epoch) {
      return credits.get(`${sessionId}:${epoch}`) ?? [];
    },
    async payoutAddresses(nodeIds) {
      return new Map(nodeIds.map((id) => [id, wallets.get(id)?.payoutAddress ?? null]));
    },
    async findSettlement(sessionId, epoch) {
      return rows.find((r) => r.sessionId === sessionId && r.epoch === epoch) ?? null;
    },
    async lastSeq() {
      return rows.reduce((m, r) => Math.max(m, r.seq), 0);
    },
    async cumulativeByAddress() {
      const out = new Map<string, bigint>();
      for (const e of sorted()) if (e.address && e.reason === null) out.set(e.address, e.cumulative);
      return out;
    },
    async createSettlement(record, newEntries) {
      if (rows.some((r) => r.seq === record.seq || (r.sessionId === record.sessionId && r.epoch === record.epoch))) return false;
      rows.push({ ...record });
      for (const e of newEntries) entries.push({ ...e, seq: record.seq, nodeName: nameOf(e.nodeId), address: e.address?.toLowerCase() ?? null });
      return true;
    },
    async settlements(status) {
      return rows.filter((r) => !status || r.status === status).sort((a, b) => a.seq - b.seq).map((r) => ({ ...r }));
    },
    async markCommitted(seq, txHash, at) {
      const row = rows.find((r) => r.seq === seq && r.status === 'pending');
      if (row) Object.assign(row, { status: 'committed', txHash, committedAt: at });
    },
    async setSettlementTx(seq, txHash) {
      const row = rows.find((r) => r.seq === seq && r.status === 'pending');
      if (row) row.txHash = txHash;
    },
    async settlementEntries(seq) {
      return entries.filter((e) => e.seq === seq);
    },
    async entriesForAddress(address) {
      return sorted().filter((e) => e.address === address.toLowerCase());
    },
    async paidEntriesUpTo(seq) {
      return sorted().filter((e) => e.seq <= seq && e.reason === null && e.address !== null);
    },
    async allEntries() {
      return sorted();
    },
  };
}

export const SEEDED_ADDRESS = '0x00000000000000000000000000000000000000a1';

/** One committed settlement paying `amount` to SEEDED_ADDRESS (node 1), so reads have something to show. */
export async function seedSettlement(repo: RewardsRepository, amount = 1000n): Promise<void> {
  const { buildMerkleTree } = await import('../../src/server/core/rewards/merkle');
  const tree = buildMerkleTree([{ account: SEEDED_ADDRESS, cumulativeAmount: amount }]);
  await repo.createSettlement(
    { seq: 1, sessionId: 1, epoch: 0, root: tree.root, total: amount, status: 'committed', txHash: null, createdAt: 0, committedAt: 0 },
    [{ nodeId: 1, address: SEEDED_ADDRESS, samples: 10, amount, cumulative: amount, reason: null }],
  );
}
