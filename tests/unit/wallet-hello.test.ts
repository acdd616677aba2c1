// The wallet hello check: an EIP-712 signature over this connection's challenge, by the claimed address, before
// it expires, for this node name and payout address; anything else is refused with the reason.
import { describe, expect, it } from 'vitest';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { checkWalletHello } from '../../src/server/core/rewards/wallet-verify';
import { walletHelloTypedData, type WalletChallenge } from '../../src/protocol/wallet-hello';

const challenge: WalletChallenge = {
  coordinator: 'hypergpu:10143:0x00000000000000000000000000000000000000cc',
  connection: 7,
  nonce: `0x${'ab'.repeat(32)}`,
  expiresAt: 1_000_000,
  chainId: 10143,
  verifyingContract: '0x00000000000000000000000000000000000000cc',
};
const account = privateKeyToAccount(generatePrivateKey());
const payout = '0x00000000000000000000000000000000000000dd' as const;

async function hello(over: Partial<{ challenge: WalletChallenge; node: string; payout: `0x${string}` }> = {}) {
  const signature = await account.signTypedData(walletHelloTypedData(over.challenge ?? challenge, over.node ?? 'n1', over.payout ?? payout));
  return { address: account.address, payout, nonce: challenge.nonce, expiresAt: challenge.expiresAt, signature };
}

describe('wallet hello', () => {
  it('accepts the key\'s own signature over this challenge and gives the authorized payout address', async () => {
    expect(await checkWalletHello(challenge, 'n1', await hello(), 999_999)).toEqual({ ok: true, address: account.address.toLowerCase(), payout });
  });

  it('refuses a signature for another node name, payout, connection or coordinator', async () => {
    for (const h of [
      await hello({ node: 'n2' }),
      await hello({ payout: '0x00000000000000000000000000000000000000ee' }),
      await hello({ challenge: { ...challenge, connection: 8 } }),
      await hello({ challenge: { ...challenge, coordinator: 'elsewhere' } }),
    ]) {
      const result = await checkWalletHello(challenge, 'n1', h, 999_999);
      expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/signature was made by/) });
    }
  });

  it('refuses another address than the signer, an expired or foreign challenge, and garbage', async () => {
    const h = await hello();
    expect(await checkWalletHello(challenge, 'n1', { ...h, address: payout }, 999_999)).toMatchObject({ ok: false });
    expect(await checkWalletHello(challenge, 'n1', h, 1_000_001)).toMatchObject({ ok: false, reason: expect.stringMatching(/expired/) });
    expect(await checkWalletHello({ ...challenge, nonce: `0x${'cd'.repeat(32)}` }, 'n1', h, 999_999)).toMatchObject({ ok: false, reason: expect.stringMatching(/another challenge/) });
    expect(await checkWalletHello(undefined, 'n1', h, 999_999)).toMatchObject({ ok: false, reason: expect.stringMatching(/no challenge/) });
    expect(await checkWalletHello(challenge, 'n1', { ...h, signature: `0x${'00'.repeat(65)}` }, 999_999)).toMatchObject({ ok: false });
  });
});
