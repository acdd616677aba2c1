// Pure rewards logic: the Merkle tree the contract verifies, credits to amounts under a policy, which credits
// are payable, and the settlement plan's cumulative leaves.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { buildMerkleTree, verifyMerkleProof } from '../../src/server/core/rewards/merkle';
import { amountsForEpoch, formatUnits18, ONE_TOKEN } from '../../src/server/core/rewards/policy';
import { payableCredits, settlementRequest } from '../../src/server/core/rewards/payable';
import { planSettlement } from '../../src/server/core/rewards/plan';
import { ROOT } from '../support/server-process';

const addr = (i: number) => `0x${i.toString(16).padStart(40, '0')}` as `0x${string}`;

describe('settlement Merkle tree', () => {
  for (const n of [1, 2, 3, 5, 8, 13]) {
    it(`proves every leaf of a ${n}-leaf tree and nothing else`, () => {
      const leaves = Array.from({ length: n }, (_, i) => ({ account: addr(i + 1), cumulativeAmount: BigInt(i + 1) * 10n ** 15n }));
      const tree = buildMerkleTree(leaves);
      for (const leaf of leaves) {
        const proof = tree.proof(leaf.account)!;
        expect(verifyMerkleProof(tree.root, leaf, proof)).toBe(true);
        expect(verifyMerkleProof(tree.root, { ...leaf, cumulativeAmount: leaf.cumulativeAmount + 1n }, proof)).toBe(false);
      }
      expect(tree.proof(addr(999))).toBeNull();
    });
  }

  it('gives the same root whatever the order of the leaves', () => {
    const leaves = [1, 2, 3, 4].map((i) => ({ account: addr(i), cumulativeAmount: BigInt(i) }));
    expect(buildMerkleTree(leaves).root).toBe(buildMerkleTree([...leaves].reverse()).root);
  });

  it('refuses two leaves for one account and an empty tree', () => {
    expect(() => buildMerkleTree([])).toThrow();
    expect(() => buildMerkleTree([{ account: addr(1), cumulativeAmount: 1n }, { account: addr(1), cumulativeAmount: 2n }])).toThrow(/two leaves/);
  });
});

describe('reward policy', () => {
  it('pays the rate per sample in exact base units', () => {
    const amounts = amountsForEpoch(new Map([[1, 3], [2, 7]]), { ratePerSample: 10n ** 12n + 1n, epochBudget: null });
    expect(amounts).toEqual([
      { nodeId: 1, samples: 3, amount: 3n * (10n ** 12n + 1n) },
      { nodeId: 2, samples: 7, amount: 7n * (10n ** 12n + 1n) },
    ]);
  });

  it('scales every node down by the same ratio over budget, rounding down, never above the budget', () => {
    const amounts = amountsForEpoch(new Map([[1, 1], [2, 1], [3, 1]]), { ratePerSample: 10n, epochBudget: 20n });
    expect(amounts.map((a) => a.amount)).toEqual([6n, 6n, 6n]);
    expect(amounts.reduce((s, a) => s + a.amount, 0n)).toBeLessThanOrEqual(20n);
  });

  it('formats base units without losing digits', () => {
    expect(formatUnits18(ONE_TOKEN + 5n)).toBe('1.000000000000000005');
    expect(formatUnits18(10n ** 12n)).toBe('0.000001');
    expect(formatUnits18(0n)).toBe('0');
  });
});

describe('payable credits', () => {
  it('settles once an epoch is audited and leaves out forfeited nodes and nodes without a payout address, saying why', () => {
    expect(settlementRequest({ kind: 'epoch-audited', sessionId: 2, epoch: 3, forfeitedNodeIds: [] })).toEqual({ sessionId: 2, epoch: 3, forfeitedNodeIds: [] });
    expect(settlementRequest({ kind: 'epoch-audited', sessionId: 2, epoch: 3, forfeitedNodeIds: [4] })).toEqual({ sessionId: 2, epoch: 3, forfeitedNodeIds: [4] });
    // A closed epoch is not settled before its audits are resolved.
    expect(settlementRequest({ kind: 'epoch-closed', sessionId: 2, epoch: 3, round: 40 })).toBeNull();
    expect(settlementRequest({ kind: 'node-credited', sessionId: 2, round: 1, nodeId: 1, status: 'applied', samples: 5 })).toBeNull();
    const { payable, unpayable } = payableCredits(
      [{ nodeId: 1, samples: 10 }, { nodeId: 2, samples: 20 }, { nodeId: 3, samples: 30 }],
      new Set([2]),
      (id) => (id === 3 ? null : addr(id)),
    );
    expect([...payable]).toEqual([[1, 10]]);
    expect(unpayable).toEqual([
      { nodeId: 2, samples: 20, reason: 'audit-failed' },
      { nodeId: 3, samples: 30, reason: 'no-payout-address' },
    ]);
  });
});

describe('settlement plan', () => {
  it('adds this epoch to each address\'s cumulative amount and keeps every earlier leaf', () => {
    const plan = planSettlement(
      [{ nodeId: 1, samples: 1, amount: 5n }, { nodeId: 2, samples: 1, amount: 7n }],
      (id) => addr(id === 2 ? 1 : id), // two nodes paid to one address
      new Map([[addr(1), 100n], [addr(9), 50n]]),
    )!;
    expect(plan.total).toBe(12n);
    expect(plan.tree.leaves.map((l) => [l.account, l.cumulativeAmount]).sort()).toEqual([[addr(1), 112n], [addr(9), 50n]].sort());
  });
});

describe('generated contract bindings', () => {
  it('are what scripts/build-contracts.mjs compiles from contracts/*.sol', () => {
    execFileSync(process.execPath, ['scripts/build-contracts.mjs', '--check'], { cwd: ROOT, stdio: 'pipe' });
  });
});
