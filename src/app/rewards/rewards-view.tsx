'use client';
// What the Rewards page shows once the chain is known: the wallet connection, the connected address's rewards
// per epoch, the Claim button with its progress, and the leaderboard.
import { useEffect } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import type { inferOutput, TRPCOptionsProxy } from '@trpc/tanstack-react-query';
import { useConnect, useConnection, useConnectors, useDisconnect, useWaitForTransactionReceipt, useWriteContract } from 'wagmi';
import { contributionRewardsAbi } from '../../contracts/generated/contribution-rewards';
import type { AppRouter } from '../../server/api/root';
import { useTRPC } from '../_trpc/client';
import { formatTokens } from './units';
import { OwnerSignIn } from './owner-sign-in';

type Api = TRPCOptionsProxy<AppRouter>;
type ChainSession = inferOutput<Api['blockchain']['session']>;
type AddressRewards = inferOutput<Api['blockchain']['rewards']>;

export function RewardsView({ chain }: { chain: ChainSession }) {
  const connection = useConnection();
  const address = connection.status === 'connected' ? connection.address : null;
  return (
    <>
      <section className="panel rewards-chain" data-testid="chain-info">
        <div className="kv">
          <span className="k">chain</span> {chain.chainId} ({chain.mode === 'anvil' ? 'local anvil' : 'network'})
        </div>
        <div className="kv">
          <span className="k">contract</span> <code>{chain.contractAddress}</code>
        </div>
        <div className="kv">
          <span className="k">committed</span> {formatTokens(chain.totals.committed)} · <span className="k">claimed</span> {formatTokens(chain.totals.claimed)} ·{' '}
          <span className="k">last settled epoch</span> {chain.lastSettledEpoch ?? '—'}
        </div>
        {chain.chainError && <p className="error">Chain unreachable: {chain.chainError}</p>}
      </section>
      <WalletPanel />
      {chain.chainId !== null && <OwnerSignIn owner={chain.owner} chainId={chain.chainId} />}
      {address && chain.contractAddress ? <AddressPanel address={address} contract={chain.contractAddress as `0x${string}`} /> : <p className="muted" data-testid="no-wallet">Connect a wallet to see what its address earned and claim it.</p>}
      <Leaderboard />
    </>
  );
}

function WalletPanel() {
  const connection = useConnection();
  const connectors = useConnectors();
  const connect = useConnect();
  const disconnect = useDisconnect();
  if (connection.status === 'connected') {
    return (
      <section className="panel wallet" data-testid="wallet">
        connected: <code data-testid="wallet-address">{connection.address}</code>{' '}
        <button type="button" className="btn btn-link" onClick={() => disconnect.mutate()}>
          Disconnect
        </button>
      </section>
    );
  }
  return (
    <section className="panel wallet" data-testid="wallet">
      {connectors.length === 0 && <span className="muted">No wallet found: install a browser wallet (MetaMask, Rabby…).</span>}
      {connectors.map((connector) => (
        <button
          key={connector.uid}
          type="button"
          className="btn btn-primary"
          data-testid={`connect-${connector.type}`}
          disabled={connect.isPending}
          onClick={() => connect.mutate({ connector })}
        >
          Connect {connector.type === 'mock' ? 'test wallet' : connector.name}
        </button>
      ))}
      {connect.error && <p className="error">{connect.error.message.split('\n')[0]}</p>}
    </section>
  );
}

function AddressPanel({ address, contract }: { address: string; contract: `0x${string}` }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const rewards = useQuery({ ...trpc.blockchain.rewards.queryOptions({ address }), refetchInterval: 3000 });
  const write = useWriteContract();
  const receipt = useWaitForTransactionReceipt({ hash: write.data });
  const done = receipt.isSuccess;
  useEffect(() => {
    if (done) void queryClient.invalidateQueries({ queryKey: trpc.blockchain.rewards.queryKey({ address }) });
  }, [done, queryClient, trpc, address]);
  const r: AddressRewards | undefined = rewards.data;
  if (!r) return <section className="panel">{rewards.error ? <p className="error">{rewards.error.message}</p> : <p className="muted">Loading rewards…</p>}</section>;
  const claimable = r.claimable === null ? null : BigInt(r.claimable);
  const claim = () => {
    if (!r.claim) return;
    write.mutate({
      address: contract,
      abi: contributionRewardsAbi,
      functionName: 'claim',
      args: [BigInt(r.claim.seq), r.address as `0x${string}`, BigInt(r.claim.cumulativeAmount), r.claim.proof as `0x${string}`[]],
    });
  };
  const stage = write.isPending ? 'confirm in your wallet…' : write.data && receipt.isLoading ? 'waiting for the transaction…' : receipt.isSuccess ? 'claimed' : null;
  return (
    <section className="panel rewards" data-testid="rewards">
      <div className="tiles">
        <Tile label="earned" value={r.earned} id="earned" />
        <Tile label="committed on chain" value={r.committed} id="committed" />
        <Tile label="claimed" value={r.claimed} id="claimed" />
        <Tile label="claimable" value={r.claimable} id="claimable" />
      </div>
      <div className="claim-row">
        <button type="button" className="btn btn-primary" data-testid="claim" disabled={!claimable || claimable === 0n || write.isPending || (Boolean(write.data) && receipt.isLoading)} onClick={claim}>
          Claim {claimable ? formatTokens(claimable.toString()) : ''}
        </button>
        {stage && <span data-testid="claim-stage">{stage}</span>}
        {write.data && (
          <span className="muted">
            tx <code>{write.data.slice(0, 18)}…</code>
          </span>
        )}
        {(write.error || receipt.error) && <span className="error">{(write.error ?? receipt.error)!.message.split('\n')[0]}</span>}
      </div>
      <table className="node-table" data-testid="reward-epochs">
        <thead>
          <tr>
            <th>settlement</th>
            <th>session</th>
            <th>epoch</th>
            <th>node</th>
            <th>samples</th>
            <th>amount</th>
            <th>status</th>
          </tr>
        </thead>
        <tbody>
          {r.epochs.map((e) => (
            <tr key={`${e.seq}-${e.nodeName}`}>
              <td>#{e.seq}</td>
              <td>{e.sessionId}</td>
              <td>{e.epoch}</td>
              <td>{e.nodeName}</td>
              <td>{e.samples}</td>
              <td>{formatTokens(e.amount)}</td>
              <td>{e.reason ? `not paid: ${e.reason}` : e.status}</td>
            </tr>
          ))}
          {r.epochs.length === 0 && (
            <tr>
              <td colSpan={7} className="muted">
                Nothing earned at this address yet: run an agent paid here (--wallet-key-file or --payout-address).
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}

function Tile({ label, value, id }: { label: string; value: string | null; id: string }) {
  return (
    <div className="tile">
      <div className="tile-label">{label}</div>
      <div className="tile-value" data-testid={`reward-${id}`} data-units={value ?? ''}>
        {value === null ? '—' : formatTokens(value)}
      </div>
    </div>
  );
}

function Leaderboard() {
  const trpc = useTRPC();
  const board = useQuery({ ...trpc.blockchain.leaderboard.queryOptions(), refetchInterval: 5000 });
  return (
    <section className="panel" data-testid="leaderboard">
      <h2>Nodes by verified contribution</h2>
      <table className="node-table">
        <thead>
          <tr>
            <th>#</th>
            <th>node</th>
            <th>paid to</th>
            <th>samples</th>
            <th>earned</th>
            <th>not paid</th>
          </tr>
        </thead>
        <tbody>
          {(board.data ?? []).map((n, i) => (
            <tr key={n.nodeId}>
              <td>{i + 1}</td>
              <td>{n.nodeName}</td>
              <td>
                <code>{n.address ? `${n.address.slice(0, 8)}…${n.address.slice(-4)}` : '—'}</code>
              </td>
              <td>{n.samples}</td>
              <td>{formatTokens(n.amount)}</td>
              <td>{n.forfeitedSamples > 0 ? `${n.forfeitedSamples} samples` : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
