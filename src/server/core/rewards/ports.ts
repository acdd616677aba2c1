// What settlement needs from the outside world: the ledger's rewards tables and the settlement contract.
// Implemented by adapters/db/rewards.ts and adapters/chain/settlement-contract.ts, faked in unit tests.
import type { EpochCredit } from './payable';

export type SettlementStatus = 'pending' | 'committed';

export interface SettlementRecord {
  /** The contract's epoch number (strictly increasing over every session). */
  seq: number;
  sessionId: number;
  epoch: number;
  root: `0x${string}`;
  /** Base units this settlement adds. */
  total: bigint;
  status: SettlementStatus;
  txHash: string | null;
  createdAt: number;
  committedAt: number | null;
}

export interface SettlementEntryRecord {
  seq: number;
  nodeId: number;
  nodeName: string;
  /** Payout address (lowercase), null when the node has none. */
  address: string | null;
  samples: number;
  amount: bigint;
  /** The address's leaf in this settlement's tree ("what it may have claimed in all, after this epoch"). */
  cumulative: bigint;
  reason: string | null;
}

export interface NodeWallet {
  nodeId: number;
  walletAddress: string | null;
  payoutAddress: string | null;
}

export interface RewardsRepository {
  /** The wallet a node name is bound to (null: no such node). */
  nodeWallet(name: string): Promise<NodeWallet | null>;
  /**
   * Binds the node to `wallet` (first time) and sets its payout address. False when the node is bound to
   * another wallet (one conditional write: of two racing hellos only one binds).
   */
  bindNodeWallet(nodeId: number, wallet: string, payout: string): Promise<boolean>;
  /** Accepted samples per node whose shards belong to `epoch` of the session, from applied rounds only. */
  epochCredits(sessionId: number, epoch: number): Promise<EpochCredit[]>;
  payoutAddresses(nodeIds: readonly number[]): Promise<Map<number, string | null>>;
  findSettlement(sessionId: number, epoch: number): Promise<SettlementRecord | null>;
  /** Highest seq written (0: none). */
  lastSeq(): Promise<number>;
  /** Each address's cumulative amount in the newest settlement it appears in. */
  cumulativeByAddress(): Promise<Map<string, bigint>>;
  /** Writes a settlement and its entries in one transaction; false when (session, epoch) already has one. */
  createSettlement(record: SettlementRecord, entries: Omit<SettlementEntryRecord, 'seq' | 'nodeName'>[]): Promise<boolean>;
  settlements(status?: SettlementStatus): Promise<SettlementRecord[]>;
  markCommitted(seq: number, txHash: string | null, at: number): Promise<void>;
  /** Records the commit transaction as soon as it is sent: after a crash, it is waited for, not sent again. */
  setSettlementTx(seq: number, txHash: string): Promise<void>;
  settlementEntries(seq: number): Promise<SettlementEntryRecord[]>;
  entriesForAddress(address: string): Promise<SettlementEntryRecord[]>;
  /** Every paid entry of settlements up to `seq` (to rebuild that settlement's tree), oldest first. */
  paidEntriesUpTo(seq: number): Promise<SettlementEntryRecord[]>;
  /** Every entry (the leaderboard sums them). */
  allEntries(): Promise<SettlementEntryRecord[]>;
}

export interface ChainInfo {
  chainId: number;
  contractAddress: `0x${string}`;
  /** What the browser's wallet should use (loopback for the local chain). */
  rpcUrl: string;
  /** 'anvil' (started by the coordinator) or 'rpc' (a network given in the environment). */
  mode: 'anvil' | 'rpc';
  /** The contract's owner (the key that commits roots): its wallet may sign in as the operator (SIWE). */
  owner: `0x${string}`;
}

export interface ContractTotals {
  lastEpoch: number;
  totalFunded: bigint;
  totalCommitted: bigint;
  totalClaimed: bigint;
}

export interface SettlementChain {
  readonly info: ChainInfo;
  totals(): Promise<ContractTotals>;
  /** The root committed for `seq`, or null when none. */
  rootOf(seq: number): Promise<`0x${string}` | null>;
  /** Sends commitEpoch (simulated first, so a revert is reported by name without spending gas); the tx hash. */
  sendCommit(seq: number, root: `0x${string}`, total: bigint): Promise<string>;
  /** Waits for a sent transaction: mined ('success' / 'reverted') or not found within the wait ('unknown'). */
  waitFor(txHash: string, timeoutMs: number): Promise<'success' | 'reverted' | 'unknown'>;
  claimed(address: string): Promise<bigint>;
  close(): Promise<void>;
}
