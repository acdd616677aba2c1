'use client';
// The Rewards page: what a node operator earned, what is committed on chain, claimed and claimable, per epoch,
// and a Claim button that sends the claim with its proof from the connected wallet. The chain comes from the
// coordinator (blockchain.session), with its explicit RPC URL, so the page never dials a public RPC.
import { useMemo } from 'react';
import { useQuery } from '@tanstack/react-query';
import { WagmiProvider } from 'wagmi';
import { useTRPC } from '../_trpc/client';
import { RewardsView } from './rewards-view';
import { walletConfig } from './wallet-config';

export default function RewardsPage() {
  const trpc = useTRPC();
  const chain = useQuery(trpc.blockchain.session.queryOptions());
  const info = chain.data;
  const config = useMemo(
    () => (info?.chainId && info.rpcUrl ? walletConfig(info.chainId, info.rpcUrl, info.mode === 'anvil') : null),
    [info?.chainId, info?.rpcUrl, info?.mode],
  );
  return (
    <div className="page rewards-page">
      <header className="rewards-head">
        <h1>Rewards</h1>
        <a className="link" href="/">
          ← Dashboard
        </a>
      </header>
      {chain.isLoading && <p className="muted">Asking the coordinator which chain it settles on…</p>}
      {chain.error && <p className="error">Could not reach the coordinator: {chain.error.message}</p>}
      {info && !config && (
        <p className="muted" data-testid="no-chain">
          This coordinator settles on no chain (started with --no-chain): rewards are kept in its ledger only.
        </p>
      )}
      {info && config && (
        <WagmiProvider config={config}>
          <RewardsView chain={info} />
        </WagmiProvider>
      )}
    </div>
  );
}
