// Checks a wallet hello: the signer recovered from the EIP-712 signature over the challenge this connection was
// sent. Pure (viem's recovery is arithmetic on the signature, no I/O); the clock's reading comes in as `now`.
import { recoverTypedDataAddress, type Hex } from 'viem';
import { walletHelloTypedData, type WalletChallenge } from '../../../protocol/wallet-hello';

export interface WalletHello {
  address: string;
  payout: string;
  nonce: string;
  expiresAt: number;
  signature: string;
}

export type WalletCheck = { ok: true; address: string; payout: string } | { ok: false; reason: string };

export async function checkWalletHello(challenge: WalletChallenge | undefined, node: string, wallet: WalletHello, now: number): Promise<WalletCheck> {
  if (!challenge) return { ok: false, reason: 'no challenge was issued on this connection' };
  if (wallet.nonce.toLowerCase() !== challenge.nonce.toLowerCase() || wallet.expiresAt !== challenge.expiresAt) {
    return { ok: false, reason: 'the signature is over another challenge than the one this connection was sent' };
  }
  if (now > challenge.expiresAt) return { ok: false, reason: `the challenge expired at ${new Date(challenge.expiresAt).toISOString()}` };
  let signer: string;
  try {
    signer = await recoverTypedDataAddress({ ...walletHelloTypedData(challenge, node, wallet.payout as Hex), signature: wallet.signature as Hex });
  } catch (error) {
    return { ok: false, reason: `the signature cannot be read (${error instanceof Error ? error.message.split('\n')[0] : String(error)})` };
  }
  if (signer.toLowerCase() !== wallet.address.toLowerCase()) {
    return { ok: false, reason: `the signature was made by ${signer.toLowerCase()}, not by ${wallet.address.toLowerCase()}` };
  }
  return { ok: true, address: signer.toLowerCase(), payout: wallet.payout.toLowerCase() };
}
