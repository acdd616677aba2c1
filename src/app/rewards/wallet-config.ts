// The wagmi config for the chain the coordinator settles on: injected wallets (a browser extension), and on the
// local chain only, a mock wallet for tests and demos (?wallet=0xADDRESS: anvil signs for its unlocked dev
// accounts, so the mock needs no key). The chain carries the coordinator's RPC URL and nothing else.
// injected and mock from 'wagmi' itself, not 'wagmi/connectors': that barrel pulls in every optional connector
// SDK (Coinbase, WalletConnect, MetaMask...), none of them installed, and the bundler would chase them all.
import { createConfig, http, injected, mock } from 'wagmi';
import { defineChain, type Address } from 'viem';

export function mockWalletAddress(): Address | null {
  if (typeof window === 'undefined') return null;
  const value = new URLSearchParams(window.location.search).get('wallet');
  return value && /^0x[0-9a-fA-F]{40}$/.test(value) ? (value as Address) : null;
}

export function walletConfig(chainId: number, rpcUrl: string, local: boolean) {
  const chain = defineChain({
    id: chainId,
    name: chainId === 10143 ? (local ? 'Local chain (10143)' : 'Monad Testnet') : `Chain ${chainId}`,
    nativeCurrency: { name: 'Monad', symbol: 'MON', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
  const mockAddress = local ? mockWalletAddress() : null;
  return createConfig({
    chains: [chain],
    connectors: [injected(), ...(mockAddress ? [mock({ accounts: [mockAddress] })] : [])],
    transports: { [chain.id]: http(rpcUrl) },
    ssr: true,
  });
}
