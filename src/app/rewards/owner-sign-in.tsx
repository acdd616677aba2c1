'use client';
// Sign-In with Ethereum for the contract owner: shown when the connected wallet owns the settlement contract. The
// server issues a nonce, the wallet signs an EIP-4361 message for this host and chain, and the server answers
// with the same session cookie the admin token gets (POST /api/auth/siwe).
import { useState } from 'react';
import { useConnection, useSignMessage } from 'wagmi';
import { createSiweMessage } from 'viem/siwe';

export function OwnerSignIn({ owner, chainId }: { owner: string | null; chainId: number }) {
  const connection = useConnection();
  const sign = useSignMessage();
  const [state, setState] = useState<{ status: 'idle' | 'busy' | 'signed-in' | 'error'; message?: string }>({ status: 'idle' });
  if (connection.status !== 'connected' || !owner || connection.address.toLowerCase() !== owner.toLowerCase()) return null;
  const signIn = async () => {
    setState({ status: 'busy' });
    try {
      const { nonce } = (await (await fetch('/api/auth/siwe/nonce')).json()) as { nonce: string };
      const message = createSiweMessage({
        domain: window.location.host,
        address: connection.address,
        statement: 'Operate this HyperGPU coordinator.',
        uri: window.location.origin,
        version: '1',
        chainId,
        nonce,
        issuedAt: new Date(),
      });
      const signature = await sign.mutateAsync({ message });
      const res = await fetch('/api/auth/siwe', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message, signature }) });
      const body = (await res.json()) as { error?: { message?: string } };
      setState(res.ok ? { status: 'signed-in' } : { status: 'error', message: body.error?.message ?? `HTTP ${res.status}` });
    } catch (error) {
      setState({ status: 'error', message: error instanceof Error ? error.message.split('\n')[0] : String(error) });
    }
  };
  return (
    <section className="panel wallet" data-testid="owner-sign-in">
      This wallet owns the rewards contract.
      {state.status === 'signed-in' ? (
        <span data-testid="owner-signed-in">
          Signed in as operator. <a className="link" href="/">Dashboard</a>
        </span>
      ) : (
        <button type="button" className="btn" data-testid="siwe" disabled={state.status === 'busy'} onClick={() => void signIn()}>
          Sign in as operator
        </button>
      )}
      {state.status === 'error' && <span className="error">{state.message}</span>}
    </section>
  );
}
