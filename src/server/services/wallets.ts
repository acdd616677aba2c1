// Node wallets: a challenge per connection, and at hello the check that the node controls the address it is
// paid at. A name is bound to the first wallet that registered it; a hello for that name without the wallet, or
// with another, is refused (WALLET_MISMATCH), and a signature that does not prove its address is refused
// (WALLET_SIGNATURE_INVALID). A node that never bound a wallet may still train; it is paid nothing.
import { AdmissionError } from '../../protocol/errors';
import type { WalletChallenge } from '../../protocol/wallet-hello';
import type { Clock, Credentials } from '../core/ports';
import type { RewardsRepository } from '../core/rewards/ports';
import { checkWalletHello, type WalletHello } from '../core/rewards/wallet-verify';

/** How long an agent has to answer a challenge: its hello follows within milliseconds. */
export const CHALLENGE_TTL_MS = 60_000;

export interface WalletDomain {
  coordinator: string;
  chainId: number;
  verifyingContract: `0x${string}` | null;
}

export class Wallets {
  private readonly challenges = new Map<number, WalletChallenge>();

  constructor(
    private readonly repo: RewardsRepository,
    private readonly credentials: Credentials,
    private readonly clock: Clock,
    private readonly domain: WalletDomain,
  ) {}

  /** A fresh challenge for a connection that just opened. */
  challenge(connection: number): WalletChallenge {
    const challenge: WalletChallenge = {
      ...this.domain,
      connection,
      // sha256 of a fresh random secret: 32 unpredictable bytes.
      nonce: `0x${this.credentials.hash(this.credentials.issue())}`,
      expiresAt: this.clock.now() + CHALLENGE_TTL_MS,
    };
    this.challenges.set(connection, challenge);
    return challenge;
  }

  forget(connection: number): void {
    this.challenges.delete(connection);
  }

  /** Checks a hello's wallet before the node is registered; throws a coded refusal. */
  async check(connection: number, name: string, wallet: WalletHello | undefined): Promise<{ address: string; payout: string } | null> {
    const bound = await this.repo.nodeWallet(name);
    if (!wallet) {
      if (bound?.walletAddress) {
        throw new AdmissionError('WALLET_MISMATCH', `node name ${name} is bound to wallet ${bound.walletAddress}: sign the hello with its key (--wallet-key-file)`);
      }
      return null;
    }
    // One challenge, one hello: a signature is never checked twice.
    const challenge = this.challenges.get(connection);
    this.challenges.delete(connection);
    const checked = await checkWalletHello(challenge, name, wallet, this.clock.now());
    if (!checked.ok) throw new AdmissionError('WALLET_SIGNATURE_INVALID', `node ${name}: wallet signature refused: ${checked.reason}`);
    if (bound?.walletAddress && bound.walletAddress !== checked.address) {
      throw new AdmissionError('WALLET_MISMATCH', `node name ${name} is bound to wallet ${bound.walletAddress}, not ${checked.address}: pick another --name`);
    }
    return checked;
  }

  /** Binds the registered node to its checked wallet (conditional: of two racing hellos only one binds). */
  async bind(nodeId: number, name: string, wallet: { address: string; payout: string }): Promise<void> {
    if (!(await this.repo.bindNodeWallet(nodeId, wallet.address, wallet.payout))) {
      throw new AdmissionError('WALLET_MISMATCH', `node name ${name} was bound to another wallet a moment ago`);
    }
  }
}
