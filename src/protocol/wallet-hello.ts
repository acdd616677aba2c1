// The EIP-712 typed data an agent signs in its hello, to prove it controls the address it is paid at. The
// coordinator sends a fresh challenge (nonce, expiry) when a connection opens; the agent signs it together with
// the coordinator's id, its connection, its node name and its payout address, so a signature cannot be replayed
// on another coordinator, connection or name, nor after it expires. Plain data (no viem here): the agent signs
// and the coordinator verifies with viem from this one definition.

export const WALLET_HELLO_DOMAIN_NAME = 'HyperGPU';
export const WALLET_HELLO_DOMAIN_VERSION = '1';

export const walletHelloTypes = {
  NodeHello: [
    { name: 'coordinator', type: 'string' },
    { name: 'connection', type: 'uint64' },
    { name: 'node', type: 'string' },
    { name: 'nonce', type: 'bytes32' },
    { name: 'expiry', type: 'uint64' },
    { name: 'payout', type: 'address' },
  ],
} as const;

export interface WalletChallenge {
  coordinator: string;
  connection: number;
  nonce: `0x${string}`;
  /** Epoch ms after which a signature over this challenge is refused. */
  expiresAt: number;
  chainId: number;
  /** The settlement contract when the coordinator has one (binds the signature to it). */
  verifyingContract: `0x${string}` | null;
}

/** The typed data for one challenge, node name and payout address: what signTypedData / verifyTypedData take. */
export function walletHelloTypedData(challenge: WalletChallenge, node: string, payout: `0x${string}`) {
  return {
    domain: {
      name: WALLET_HELLO_DOMAIN_NAME,
      version: WALLET_HELLO_DOMAIN_VERSION,
      chainId: challenge.chainId,
      ...(challenge.verifyingContract ? { verifyingContract: challenge.verifyingContract } : {}),
    },
    types: walletHelloTypes,
    primaryType: 'NodeHello' as const,
    message: {
      coordinator: challenge.coordinator,
      connection: BigInt(challenge.connection),
      node,
      nonce: challenge.nonce,
      expiry: BigInt(challenge.expiresAt),
      payout,
    },
  };
}
