// The settlement contract through viem: deploy (and fund) or attach, commit roots, read totals and claims.
// The same code talks to the local anvil and to Monad testnet; only the RPC URL, chain id, key and address
// differ. Gas: Monad charges the gas limit, not the gas used, so commits send an estimate plus 20%.
import { createPublicClient, createWalletClient, defineChain, http, type Address, type Hex, type PublicClient, type WalletClient, type Chain } from 'viem';
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts';
import { monadTestnet } from 'viem/chains';
import { contributionRewardsAbi, contributionRewardsBytecode } from '../../../contracts/generated/contribution-rewards';
import type { ChainInfo, ContractTotals, SettlementChain } from '../../core/rewards/ports';

const ZERO_ROOT = `0x${'0'.repeat(64)}`;

export function chainFor(chainId: number, rpcUrl: string): Chain {
  // The explicit RPC URL matters: viem's monadTestnet would otherwise dial its public default.
  const base = chainId === monadTestnet.id ? monadTestnet : null;
  return defineChain({
    id: chainId,
    name: base?.name ?? `Chain ${chainId}`,
    nativeCurrency: base?.nativeCurrency ?? { name: 'Monad', symbol: 'MON', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
}

export interface ContractClients {
  chain: Chain;
  account: PrivateKeyAccount;
  publicClient: PublicClient;
  walletClient: WalletClient;
}

export function contractClients(rpcUrl: string, chainId: number, deployerKey: Hex): ContractClients {
  const chain = chainFor(chainId, rpcUrl);
  // retryCount 0: a revert or an unreachable chain is reported at once; settlement has its own retry loop.
  const transport = http(rpcUrl, { retryCount: 0, timeout: 10_000 });
  const account = privateKeyToAccount(deployerKey);
  return {
    chain,
    account,
    // Receipts polled every 250 ms (viem's default is 4 s): Monad and anvil make blocks in about a second or less.
    publicClient: createPublicClient({ chain, transport, pollingInterval: 250 }) as PublicClient,
    walletClient: createWalletClient({ chain, transport, account, pollingInterval: 250 }),
  };
}

/** Deploys the contract funded with `fundWei`; returns its address once the deployment is mined. */
export async function deployRewardsContract(clients: ContractClients, fundWei: bigint): Promise<Address> {
  const hash = await clients.walletClient.deployContract({
    abi: contributionRewardsAbi,
    bytecode: contributionRewardsBytecode,
    account: clients.account,
    chain: clients.chain,
    value: fundWei,
  });
  const receipt = await clients.publicClient.waitForTransactionReceipt({ hash });
  if (!receipt.contractAddress || receipt.status !== 'success') throw new Error(`deploying ContributionRewards failed (tx ${hash})`);
  return receipt.contractAddress;
}

/** True when code is deployed at `address` (an attach to a missing contract must fail loudly). */
export async function hasCode(clients: ContractClients, address: Address): Promise<boolean> {
  const code = await clients.publicClient.getCode({ address });
  return code !== undefined && code !== '0x';
}

export function createSettlementChain(clients: ContractClients, info: ChainInfo, onClose: () => Promise<void> = async () => {}): SettlementChain {
  const { publicClient, walletClient, account, chain } = clients;
  const address = info.contractAddress;
  const read = <T>(functionName: string, args: readonly unknown[] = []) =>
    publicClient.readContract({ address, abi: contributionRewardsAbi, functionName: functionName as never, args: args as never }) as Promise<T>;
  return {
    info,
    async totals(): Promise<ContractTotals> {
      const [lastEpoch, totalFunded, totalCommitted, totalClaimed] = await Promise.all([
        read<bigint>('lastEpoch'),
        read<bigint>('totalFunded'),
        read<bigint>('totalCommitted'),
        read<bigint>('totalClaimed'),
      ]);
      return { lastEpoch: Number(lastEpoch), totalFunded, totalCommitted, totalClaimed };
    },
    async rootOf(seq) {
      const root = await read<Hex>('roots', [BigInt(seq)]);
      return root === ZERO_ROOT ? null : root;
    },
    async sendCommit(seq, root, total) {
      const args = [BigInt(seq), root, total] as const;
      // Simulate first: a revert comes back decoded by name (Underfunded, EpochNotIncreasing...) and costs no gas.
      const { request } = await publicClient.simulateContract({ address, abi: contributionRewardsAbi, functionName: 'commitEpoch', args, account, chain });
      const gas = await publicClient.estimateContractGas({ address, abi: contributionRewardsAbi, functionName: 'commitEpoch', args, account });
      return walletClient.writeContract({ ...request, gas: (gas * 12n) / 10n });
    },
    async waitFor(txHash, timeoutMs) {
      try {
        const receipt = await publicClient.waitForTransactionReceipt({ hash: txHash as Hex, timeout: timeoutMs, pollingInterval: 250 });
        return receipt.status === 'success' ? 'success' : 'reverted';
      } catch (error) {
        if ((error as Error).name === 'WaitForTransactionReceiptTimeoutError') return 'unknown';
        throw error;
      }
    },
    claimed: (account) => read<bigint>('claimed', [account as Address]),
    close: onClose,
  };
}
