// The node's EVM key: what it is paid to and how it proves that at every hello (an EIP-712 signature over the
// coordinator's challenge, protocol/wallet-hello.ts). Taken from --wallet-key-file, else HYPERGPU_WALLET_KEY,
// else generated on first run into the state directory, readable by its owner only. The key never leaves this
// process: it is never logged and never sent; only the address and signatures are.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts';
import { walletHelloTypedData, type WalletChallenge } from '../protocol/wallet-hello';

const KEY_SHAPE = /^(0x)?[0-9a-fA-F]{64}$/;

export interface NodeWallet {
  address: `0x${string}`;
  payout: `0x${string}`;
  /** Where the key came from, for the log (never the key). */
  source: string;
  sign(challenge: WalletChallenge, node: string): Promise<Hex>;
}

export interface WalletOptions {
  /** --wallet-key-file: a file holding the 32-byte key as hex. */
  keyFile?: string;
  /** HYPERGPU_WALLET_KEY. */
  envKey?: string;
  /** Generated keys are kept here as wallet-<name>.key (one per node name: local agents share a state dir). */
  stateDir: string;
  name: string;
  /** --payout-address: paid there instead of the key's own address (the signed hello authorizes it). */
  payout?: string;
  log: (line: string) => void;
}

function toKey(text: string, where: string): Hex {
  const trimmed = text.trim();
  if (!KEY_SHAPE.test(trimmed)) throw new Error(`${where} does not hold a private key (64 hex digits)`);
  return (trimmed.startsWith('0x') ? trimmed : `0x${trimmed}`) as Hex;
}

export function walletKeyFile(stateDir: string, name: string): string {
  return path.join(stateDir, `wallet-${name}.key`);
}

export function loadWallet(options: WalletOptions): NodeWallet {
  let key: Hex;
  let source: string;
  if (options.keyFile) {
    key = toKey(readFileSync(options.keyFile, 'utf8'), options.keyFile);
    source = options.keyFile;
  } else if (options.envKey) {
    key = toKey(options.envKey, 'HYPERGPU_WALLET_KEY');
    source = 'HYPERGPU_WALLET_KEY';
  } else {
    const file = walletKeyFile(options.stateDir, options.name);
    if (existsSync(file)) {
      key = toKey(readFileSync(file, 'utf8'), file);
      if ((statSync(file).mode & 0o077) !== 0) {
        chmodSync(file, 0o600);
        options.log(`${file} was readable by others: made it owner-only`);
      }
    } else {
      key = generatePrivateKey();
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      const temp = `${file}.tmp`;
      writeFileSync(temp, `${key}\n`, { mode: 0o600 });
      chmodSync(temp, 0o600);
      renameSync(temp, file);
      options.log(`generated this node's wallet key in ${file} (owner-only); keep it: it is what you are paid to`);
    }
    source = file;
  }
  const account: PrivateKeyAccount = privateKeyToAccount(key);
  if (options.payout !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(options.payout)) throw new Error(`--payout-address ${options.payout} is not an address`);
  const payout = (options.payout ?? account.address) as `0x${string}`;
  return {
    address: account.address,
    payout,
    source,
    sign: (challenge, node) => account.signTypedData(walletHelloTypedData(challenge, node, payout)),
  };
}
