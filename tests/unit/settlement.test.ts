// The settlement consumer over an in-memory ledger and a fake chain: idempotent planning keyed by (session,
// epoch), cumulative leaves across epochs, unpayable credits recorded with their reason, retries while the chain
// is down (training is never blocked), and the restart cases: a root already on chain, a transaction already sent.
import { describe, expect, it } from 'vitest';
import type { OutboxRecord } from '../../src/server/core/engine/committed';
import type { ContractTotals, SettlementChain } from '../../src/server/core/rewards/ports';
import { verifyMerkleProof } from '../../src/server/core/rewards/merkle';
import { RewardsService } from '../../src/server/services/rewards';
import { Settlement } from '../../src/server/services/settlement';
import { createFakeRewardsRepository } from '../support/fake-rewards';
import { FakeClock } from '../support/fakes';

const A = '0x00000000000000000000000000000000000000aa';
const B = '0x00000000000000000000000000000000000000bb';

class FakeChain implements SettlementChain {
  readonly info = { chainId: 10143, contractAddress: '0x00000000000000000000000000000000000000cc' as const, rpcUrl: 'http://fake', mode: 'anvil' as const, owner: '0x00000000000000000000000000000000000000ee' as const };
  roots = new Map<number, `0x${string}`>();
  committed = 0n;
  down = false;
  sent: { seq: number; root: string; total: bigint }[] = [];
  /** Transactions sent but not yet mined (mined on the next waitFor unless `stuck`). */
  pending = new Map<string, { seq: number; root: `0x${string}`; total: bigint }>();
  stuck = false;
  async totals(): Promise<ContractTotals> {
    this.check();
    return { lastEpoch: Math.max(0, ...this.roots.keys()), totalFunded: 10n ** 30n, totalCommitted: this.committed, totalClaimed: 0n };
  }
  async rootOf(seq: number) {
    this.check();
    return this.roots.get(seq) ?? null;
  }
  async sendCommit(seq: number, root: `0x${string}`, total: bigint) {
    this.check();
    if (this.roots.has(seq)) throw new Error('EpochNotIncreasing');
    this.sent.push({ seq, root, total });
    const hash = `0x${String(this.sent.length).padStart(64, '0')}`;
    this.pending.set(hash, { seq, root, total });
    return hash;
  }
  async waitFor(hash: string) {
    this.check();
    const tx = this.pending.get(hash);
    if (!tx) return this.stuck ? ('unknown' as const) : ('success' as const);
    if (this.stuck) return 'unknown' as const;
    this.pending.delete(hash);
    if (this.roots.has(tx.seq)) return 'reverted' as const;
    this.roots.set(tx.seq, tx.root);
    this.committed += tx.total;
    return 'success' as const;
  }
  async claimed() {
    return 0n;
  }
  async close() {}
  private check() {
    if (this.down) throw new Error('connection refused');
  }
}

const closed = (id: number, sessionId: number, epoch: number): OutboxRecord => ({ id, event: { kind: 'epoch-audited', sessionId, epoch, forfeitedNodeIds: [] } });

function setup(chain: SettlementChain | null = new FakeChain()) {
  const repo = createFakeRewardsRepository();
  repo.wallets.set(1, { name: 'n1', walletAddress: A, payoutAddress: A });
  repo.wallets.set(2, { name: 'n2', walletAddress: B, payoutAddress: B });
  repo.wallets.set(3, { name: 'n3', walletAddress: null, payoutAddress: null });
  const clock = new FakeClock();
  const logs: string[] = [];
  const make = () =>
    new Settlement({ repo, chain, clock, policy: () => ({ ratePerSample: 10n, epochBudget: null }), log: (_, m) => logs.push(m), minRetryMs: 1000, maxRetryMs: 8000 });
  return { repo, clock, logs, make, chain: chain as FakeChain };
}

async function settle(s: Settlement) {
  await s.idle();
  await s.idle();
}

describe('settlement', () => {
  it('commits each closed epoch once, with cumulative leaves, and records why unpaid credits earn nothing', async () => {
    const { repo, make, chain } = setup();
    repo.credits.set('1:0', [{ nodeId: 1, samples: 5 }, { nodeId: 2, samples: 3 }, { nodeId: 3, samples: 4 }]);
    repo.credits.set('1:1', [{ nodeId: 1, samples: 2 }]);
    const s = make();
    s.start();
    await s.handle(closed(1, 1, 0));
    await s.handle(closed(1, 1, 0)); // redelivered after a restart
    await s.handle(closed(2, 1, 1));
    await settle(s);
    expect(repo.rows.map((r) => [r.seq, r.epoch, r.total, r.status])).toEqual([
      [1, 0, 80n, 'committed'],
      [2, 1, 20n, 'committed'],
    ]);
    expect(chain.sent.map((t) => t.seq)).toEqual([1, 2]);
    expect(repo.entries.find((e) => e.nodeId === 3)).toMatchObject({ reason: 'no-payout-address', amount: 0n, samples: 4 });
    // Epoch 1 paid only A, yet B keeps its leaf: the newest root alone pays everyone all they are owed.
    const rewards = new RewardsService(repo, chain, () => 1);
    for (const [address, owed] of [[A, 70n], [B, 30n]] as const) {
      const p = await rewards.proof(address, 2);
      expect(p.cumulativeAmount).toBe(owed);
      expect(verifyMerkleProof(chain.roots.get(2)!, { account: address, cumulativeAmount: owed }, p.proof as `0x${string}`[])).toBe(true);
    }
    const a = await rewards.forAddress(A);
    expect(a).toMatchObject({ earned: 70n, committed: 70n, claimable: 70n, claim: { seq: 2, cumulativeAmount: 70n } });
  });

  it('plans while the chain is down, retries with backoff, and commits once it is back', async () => {
    const chain = new FakeChain();
    chain.down = true;
    const { repo, clock, logs, make } = setup(chain);
    repo.credits.set('1:0', [{ nodeId: 1, samples: 5 }]);
    const s = make();
    s.start();
    await s.handle(closed(1, 1, 0));
    await settle(s);
    expect(repo.rows[0]).toMatchObject({ seq: 1, status: 'pending' });
    expect(logs.some((l) => /retrying in 1 s \(training goes on\)/.test(l))).toBe(true);
    clock.advance(1000);
    await settle(s);
    expect(logs.some((l) => /retrying in 2 s/.test(l))).toBe(true);
    chain.down = false;
    clock.advance(2000);
    await settle(s);
    expect(repo.rows[0]!.status).toBe('committed');
    expect(chain.sent).toHaveLength(1);
  });

  it('after a restart, marks a root already on chain as committed instead of sending it again', async () => {
    const { repo, make, chain, logs } = setup();
    repo.credits.set('1:0', [{ nodeId: 1, samples: 5 }]);
    chain.down = true;
    const first = make();
    await first.handle(closed(1, 1, 0));
    await first.close();
    // The commit went through before the crash (sent by the process that died), the row still says pending.
    chain.down = false;
    chain.roots.set(1, repo.rows[0]!.root);
    const second = make();
    second.start();
    await settle(second);
    expect(repo.rows[0]!.status).toBe('committed');
    expect(chain.sent).toHaveLength(0);
    expect(logs.some((l) => /already on chain/.test(l))).toBe(true);
  });

  it('after a restart, waits for a transaction already sent rather than sending another', async () => {
    const { repo, make, chain } = setup();
    repo.credits.set('1:0', [{ nodeId: 1, samples: 5 }]);
    chain.stuck = true; // sent, not mined before the "crash"
    const first = make();
    first.start();
    await first.handle(closed(1, 1, 0));
    await settle(first);
    await first.close();
    expect(repo.rows[0]).toMatchObject({ status: 'pending' });
    expect(repo.rows[0]!.txHash).toMatch(/^0x/);
    chain.stuck = false;
    const second = make();
    second.start();
    await settle(second);
    expect(repo.rows[0]!.status).toBe('committed');
    expect(chain.sent).toHaveLength(1);
  });

  it('pays nothing to a forfeited node (the audit trigger) and numbers its settlement above the chain\'s history', async () => {
    const { repo, make, chain, logs } = setup();
    repo.credits.set('1:0', [{ nodeId: 1, samples: 5 }, { nodeId: 2, samples: 5 }]);
    chain.roots.set(1, `0x${'1'.repeat(64)}`); // someone else's root at seq 1
    const s = make();
    // The epoch-audited event carries the forfeited nodes. Planned before the commit loop ever ran (the outbox
    // catches up first at start): still above the history.
    await s.handle({ id: 1, event: { kind: 'epoch-audited', sessionId: 1, epoch: 0, forfeitedNodeIds: [2] } });
    await settle(s);
    expect(repo.rows[0]!.seq).toBe(2); // above the chain's history
    expect(repo.entries.find((e) => e.nodeId === 2)).toMatchObject({ reason: 'audit-failed', amount: 0n });
    expect(repo.rows[0]!.status).toBe('committed');
    expect(logs.some((l) => /another root/.test(l))).toBe(false);
  });

  it('stops, and commits nothing more, when the chain holds another root at a planned seq', async () => {
    const { repo, make, chain, logs } = setup();
    repo.credits.set('1:0', [{ nodeId: 1, samples: 5 }]);
    repo.credits.set('1:1', [{ nodeId: 1, samples: 5 }]);
    chain.down = true;
    const s = make();
    await s.handle(closed(1, 1, 0));
    await s.handle(closed(2, 1, 1));
    await s.close();
    chain.down = false;
    chain.roots.set(1, `0x${'2'.repeat(64)}`);
    const again = make();
    again.start();
    await settle(again);
    expect(logs.some((l) => /settlement #1: the chain holds another root/.test(l))).toBe(true);
    expect(repo.rows.map((r) => r.status)).toEqual(['pending', 'pending']);
    expect(chain.sent).toHaveLength(0);
  });
});

