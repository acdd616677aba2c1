// Brings up the chain settlement runs on, for the composition root: the local anvil (default: started here,
// contract deployed and funded from anvil's dev account, its address remembered in the data dir), a network
// named in the environment (attach to HYPERGPU_CONTRACT_ADDRESS, or deploy with HYPERGPU_DEPLOYER_KEY), or none.
// A chain that cannot be reached at start does not stop the coordinator: settlement stays pending and retries.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Address, Hex } from 'viem';
import { ANVIL_DEV_KEY, startAnvil } from './adapters/chain/anvil';
import { contractClients, createSettlementChain, deployRewardsContract, hasCode } from './adapters/chain/settlement-contract';
import type { SettlementChain } from './core/rewards/ports';
import { ONE_TOKEN } from './core/rewards/policy';

export const MONAD_TESTNET_CHAIN_ID = 10143;

export type ChainOptions =
  | { mode: 'off' }
  | { mode: 'anvil'; chainId?: number; fundWei?: bigint }
  | { mode: 'rpc'; rpcUrl: string; chainId: number; deployerKey: Hex; contractAddress?: Address; fundWei?: bigint };

export async function setUpChain(options: ChainOptions, dataDir: string, info: (message: string) => void): Promise<SettlementChain | null> {
  if (options.mode === 'off') return null;
  if (options.mode === 'anvil') {
    const chainId = options.chainId ?? MONAD_TESTNET_CHAIN_ID;
    const dir = path.join(dataDir, 'chain');
    mkdirSync(dir, { recursive: true });
    const anvil = await startAnvil({ chainId, stateFile: path.join(dir, 'anvil-state.json') });
    try {
      const clients = contractClients(anvil.rpcUrl, chainId, ANVIL_DEV_KEY);
      const remembered = path.join(dir, 'contract.json');
      let address: Address | null = existsSync(remembered) ? (JSON.parse(readFileSync(remembered, 'utf8')) as { address: Address }).address : null;
      if (address && !(await hasCode(clients, address))) address = null;
      if (!address) {
        // 1,000 tokens: about 1,000 epochs at the default policy's budget.
        address = await deployRewardsContract(clients, options.fundWei ?? 1000n * ONE_TOKEN);
        writeFileSync(remembered, JSON.stringify({ address, chainId }));
        info(`local chain: deployed ContributionRewards at ${address} (funded from anvil's dev account)`);
      }
      info(`local chain: anvil on ${anvil.rpcUrl} (chain id ${chainId}), contract ${address}`);
      return createSettlementChain(clients, { chainId, contractAddress: address, rpcUrl: anvil.rpcUrl, mode: 'anvil', owner: clients.account.address }, () => anvil.stop());
    } catch (error) {
      await anvil.stop();
      throw error;
    }
  }
  const clients = contractClients(options.rpcUrl, options.chainId, options.deployerKey);
  let address = options.contractAddress ?? null;
  if (!address) {
    address = await deployRewardsContract(clients, options.fundWei ?? 0n);
    info(`chain ${options.chainId}: deployed ContributionRewards at ${address}; set HYPERGPU_CONTRACT_ADDRESS=${address} to attach to it next time`);
  } else {
    info(`chain ${options.chainId}: attached to ContributionRewards at ${address} via ${options.rpcUrl}`);
  }
  return createSettlementChain(clients, { chainId: options.chainId, contractAddress: address, rpcUrl: options.rpcUrl, mode: 'rpc', owner: clients.account.address });
}
