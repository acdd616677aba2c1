// Verified contribution, paid on chain, for real: a local anvil, the server as a child process settling on it
// (attached through the environment, the way it would attach to Monad testnet), 3 real agents with their own
// generated wallets training a small dataset in small epochs, a kill -9 of the coordinator while an epoch's
// commit is in flight, then every agent claiming with its own key and the chain's balances checked against the
// ledger. Plus hellos that cannot prove their wallet, refused.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createWalletClient, http, parseAbiItem, parseEther, type Address, type Hex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { ANVIL_DEV_KEY, startAnvil, type AnvilProcess } from '../../src/server/adapters/chain/anvil';
import { contractClients, deployRewardsContract, type ContractClients } from '../../src/server/adapters/chain/settlement-contract';
import { contributionRewardsAbi } from '../../src/contracts/generated/contribution-rewards';
import { walletHelloTypedData, type WalletChallenge } from '../../src/protocol/wallet-hello';
import { writeDigits } from '../support/digits';
import { eventually, startServer, tempDataDir, waitForHttp, withServerTail, type ServerProcess } from '../support/server-process';

const CHAIN_ID = 10143;
const PER_SAMPLE = 10n ** 15n; // 0.001 token a sample: an epoch of 600 samples pays 0.6 token

describe('settlement on a local chain', () => {
  const work = tempDataDir('hypergpu-settlement-it-');
  const dataDir = path.join(work, 'data');
  const digits = path.join(work, 'digits');
  let anvil: AnvilProcess;
  let owner: ContractClients;
  let contract: Address;
  let server: ServerProcess;
  let firstRun = '';
  const args = ['--no-dashboard', '--nodes', '3', '--dataset', `digits=${digits}`, '--dataset', 'digits', '--batch-size', '50', '--max-samples', '1800', '--eval-every', '5', '--checkpoint-every', '5', '--lr', '0.01'];
  const env = () => ({
    HYPERGPU_CHAIN_RPC_URL: anvil.rpcUrl,
    HYPERGPU_CHAIN_ID: String(CHAIN_ID),
    HYPERGPU_DEPLOYER_KEY: ANVIL_DEV_KEY,
    HYPERGPU_CONTRACT_ADDRESS: contract,
    HYPERGPU_REWARD_PER_SAMPLE: PER_SAMPLE.toString(),
    HYPERGPU_EPOCH_BUDGET: 'none',
  });
  const get = async (p: string) => (await (await fetch(`${server.baseUrl}${p}`)).json()) as any;
  const read = <T>(functionName: string, a: readonly unknown[] = []) =>
    owner.publicClient.readContract({ address: contract, abi: contributionRewardsAbi, functionName: functionName as never, args: a as never }) as Promise<T>;

  beforeAll(async () => {
    writeDigits(digits, 600, 100);
    // Blocks every second: a commit stays pending long enough for the kill -9 to land while it is in flight.
    anvil = await startAnvil({ chainId: CHAIN_ID, blockTimeS: 1 });
    owner = contractClients(anvil.rpcUrl, CHAIN_ID, ANVIL_DEV_KEY);
    contract = await deployRewardsContract(owner, parseEther('100'));
    server = await startServer(args, { dataDir, env: env() });
    // The first settlement is planned (its row written, its commit being sent): kill -9 now.
    await server.waitForOutput(/settlement #1 planned/, 180_000);
    server.child.kill('SIGKILL');
    await server.exited;
    firstRun = server.output();
    // Same port: the agents keep their node secrets per coordinator address.
    server = await startServer(args, { dataDir, port: server.port, env: env() });
    await waitForHttp(`${server.baseUrl}/health`);
    // Until training ends and every closed epoch is audited and on chain. An epoch settles only after its audits
    // (epoch-audited), which can trail the training's end: wait until every outbox consumer (audits, then
    // settlement) is past the newest committed event and nothing is pending.
    const consumersCaughtUp = () => {
      const db = new Database(path.join(dataDir, 'hypergpu.db'), { readonly: true });
      try {
        const newest = (db.prepare('SELECT MAX(id) AS id FROM OutboxEvent').get() as { id: number | null }).id ?? 0;
        const behind = db.prepare('SELECT COUNT(*) AS n FROM OutboxCursor WHERE consumer IN (?, ?) AND position < ?').get('audits', 'settlement', newest) as { n: number };
        const cursors = db.prepare('SELECT COUNT(*) AS n FROM OutboxCursor WHERE consumer IN (?, ?)').get('audits', 'settlement') as { n: number };
        const pendingAudits = db.prepare("SELECT COUNT(*) AS n FROM Audit WHERE outcome = 'pending'").get() as { n: number };
        return cursors.n === 2 && behind.n === 0 && pendingAudits.n === 0;
      } finally {
        db.close();
      }
    };
    await withServerTail(server, () => eventually(
      // Cursors first: once they are past everything, a pending count of 0 read after them means all is on chain.
      async () => {
        const caughtUp = consumersCaughtUp();
        return { caughtUp, status: await get('/api/status'), chain: await get('/api/blockchain/session') };
      },
      (s) => ['completed', 'stopped'].includes(s.status.state) && s.caughtUp && s.chain.pendingSettlements === 0 && s.chain.lastSettledSeq !== null,
      240_000,
      'training completed, every epoch audited and settled',
    ));
  }, 420_000);

  afterAll(async () => {
    await server?.stop('SIGTERM');
    await anvil?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('settles each closed epoch exactly once on chain, also across a kill -9 during a commit', async () => {
    expect(firstRun).toMatch(/attached to ContributionRewards/);
    const db = new Database(path.join(dataDir, 'hypergpu.db'), { readonly: true });
    const rows = db.prepare('SELECT seq, sessionId, epoch, root, total, status FROM Settlement ORDER BY seq').all() as { seq: number; sessionId: number; epoch: number; root: string; total: string; status: string }[];
    db.close();
    expect(rows.length).toBeGreaterThanOrEqual(1);
    expect(rows.every((r) => r.status === 'committed')).toBe(true);
    // One row per (session, epoch) and seqs 1..n in order.
    expect(new Set(rows.map((r) => `${r.sessionId}:${r.epoch}`)).size).toBe(rows.length);
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
    const logs = await owner.publicClient.getLogs({ address: contract, event: parseAbiItem('event EpochCommitted(uint64 indexed epoch, bytes32 root, uint256 total, uint256 totalCommitted)'), fromBlock: 0n });
    // Each seq committed once, with the ledger's root and total.
    expect(logs.map((l) => Number(l.args.epoch))).toEqual(rows.map((r) => r.seq));
    for (const [i, log] of logs.entries()) {
      expect(log.args.root).toBe(rows[i]!.root);
      expect(log.args.total).toBe(BigInt(rows[i]!.total));
    }
    const ledgerTotal = rows.reduce((s, r) => s + BigInt(r.total), 0n);
    expect(await read<bigint>('totalCommitted')).toBe(ledgerTotal);
    const chain = await get('/api/blockchain/session');
    expect(chain).toMatchObject({ chainId: CHAIN_ID, mode: 'rpc', lastSettledSeq: rows.length, pendingSettlements: 0 });
    expect(chain.contractAddress.toLowerCase()).toBe(contract.toLowerCase());
    expect(chain.totals.ledger).toBe(ledgerTotal.toString());
  });

  it('pays each agent its ledger amount when it claims with its own key, and the claims add up to the committed total', async () => {
    const funder = createWalletClient({ account: privateKeyToAccount('0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d'), chain: owner.chain, transport: http(anvil.rpcUrl) });
    let claimedTotal = 0n;
    for (const name of ['local-1', 'local-2', 'local-3']) {
      const key = readFileSync(path.join(dataDir, 'agents', `wallet-${name}.key`), 'utf8').trim() as Hex;
      const account = privateKeyToAccount(key);
      const rewards = await get(`/api/blockchain/rewards?address=${account.address}`);
      expect(rewards.epochs.length, `${name} has ledger entries`).toBeGreaterThan(0);
      expect(rewards.epochs.every((e: any) => e.nodeName === name && e.status === 'committed' && e.reason === null)).toBe(true);
      // The ledger amount is exactly rate x accepted samples.
      for (const e of rewards.epochs) expect(BigInt(e.amount)).toBe(BigInt(e.samples) * PER_SAMPLE);
      expect(rewards.claimable).toBe(rewards.earned);
      // A generated wallet holds no gas: the operator tops it up, as on a real network.
      await owner.publicClient.waitForTransactionReceipt({ hash: await funder.sendTransaction({ to: account.address, value: parseEther('1') }) });
      const before = await owner.publicClient.getBalance({ address: account.address });
      const wallet = createWalletClient({ account, chain: owner.chain, transport: http(anvil.rpcUrl) });
      const hash = await wallet.writeContract({
        address: contract,
        abi: contributionRewardsAbi,
        functionName: 'claim',
        args: [BigInt(rewards.claim.seq), account.address, BigInt(rewards.claim.cumulativeAmount), rewards.claim.proof],
      });
      const receipt = await owner.publicClient.waitForTransactionReceipt({ hash });
      expect(receipt.status).toBe('success');
      const after = await owner.publicClient.getBalance({ address: account.address });
      expect(after - before + receipt.gasUsed * receipt.effectiveGasPrice).toBe(BigInt(rewards.earned));
      claimedTotal += BigInt(rewards.earned);
      const again = await get(`/api/blockchain/rewards?address=${account.address}`);
      expect(again.claimed).toBe(rewards.earned);
      expect(again.claimable).toBe('0');
      // The node's "why did I earn this" timeline says the same per epoch: settled on chain, and claimed.
      const timeline = await get(`/api/nodes/${name}/timeline`);
      for (const e of rewards.epochs) {
        const row = timeline.epochs.find((t: any) => t.sessionId === e.sessionId && t.epoch === e.epoch);
        expect(row, `${name} epoch ${e.epoch} in its timeline`).toMatchObject({ settled: e.amount, claimed: e.amount, forfeited: false });
      }
    }
    expect(claimedTotal).toBe(await read<bigint>('totalCommitted'));
    expect(await read<bigint>('totalClaimed')).toBe(claimedTotal);
  });

  describe('wallet hellos', () => {
    /** Opens an agent socket, reads the challenge, sends `hello(challenge)`, and collects the answer. */
    async function helloWith(hello: (challenge: WalletChallenge) => Promise<object>): Promise<{ messages: any[]; closeCode: number }> {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/agent`);
      const messages: any[] = [];
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer: ${JSON.stringify(messages)}`)), 15_000);
        ws.on('message', (data) => {
          const message = JSON.parse(data.toString());
          messages.push(message);
          if (message.type === 'challenge') void hello(message.challenge).then((h) => ws.send(JSON.stringify(h)));
          if (message.type === 'welcome') ws.close(1000);
        });
        ws.on('close', (closeCode) => {
          clearTimeout(timer);
          resolve({ messages, closeCode });
        });
        ws.on('error', reject);
      });
    }
    const capabilities = { backend: 'test', device: 'test', samplesPerSecond: 1, agentVersion: 'test', hostname: 'test' };
    const signedHello = (name: string, key: Hex, claimAddress?: Address, token?: string) => async (challenge: WalletChallenge) => {
      const account = privateKeyToAccount(key);
      const signature = await account.signTypedData(walletHelloTypedData(challenge, name, account.address));
      return {
        v: 1,
        type: 'hello',
        name,
        capabilities,
        ...(token ? { token } : {}),
        wallet: { address: claimAddress ?? account.address, payout: account.address, nonce: challenge.nonce, expiresAt: challenge.expiresAt, signature },
      };
    };

    it('refuses an agent whose signature does not prove the address it claims', async () => {
      const victim = privateKeyToAccount(generatePrivateKey()).address;
      const answer = await helloWith(signedHello('impostor', generatePrivateKey(), victim));
      expect(answer.messages.find((m) => m.type === 'error')).toMatchObject({ code: 'WALLET_SIGNATURE_INVALID' });
      expect(answer.closeCode).toBe(4013);
      expect(answer.messages.some((m) => m.type === 'welcome')).toBe(false);
    });

    it('binds a name to its first wallet: the same name with another key, or none, is refused', async () => {
      const key = generatePrivateKey();
      const first = await helloWith(signedHello('bound-node', key));
      const welcome = first.messages.find((m) => m.type === 'welcome');
      expect(welcome).toBeTruthy();
      // Even holding the name's secret, another wallet cannot take the name over...
      const other = await helloWith(signedHello('bound-node', generatePrivateKey(), undefined, welcome.token));
      expect(other.messages.find((m) => m.type === 'error')).toMatchObject({ code: 'WALLET_MISMATCH' });
      expect(other.closeCode).toBe(4013);
      // ...nor can a hello without a wallet; the right key still can.
      const none = await helloWith(async () => ({ v: 1, type: 'hello', name: 'bound-node', capabilities, token: welcome.token }));
      expect(none.messages.find((m) => m.type === 'error')).toMatchObject({ code: 'WALLET_MISMATCH' });
      const back = await helloWith(signedHello('bound-node', key, undefined, welcome.token));
      expect(back.messages.find((m) => m.type === 'welcome')?.nodeId).toBe(welcome.nodeId);
    });
  });
});
