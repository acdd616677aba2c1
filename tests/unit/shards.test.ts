import { describe, expect, it } from 'vitest';
import { epochPermutation, freshCursor, returnShards, takeShards } from '../../src/server/core/shards';

describe('shards', () => {
  it('derives the same permutation from the same seed and epoch, a different one otherwise', () => {
    const a = epochPermutation(42, 0, 1000);
    expect(Array.from(a)).toEqual(Array.from(epochPermutation(42, 0, 1000)));
    expect(Array.from(a)).not.toEqual(Array.from(epochPermutation(42, 1, 1000)));
    expect(Array.from(a)).not.toEqual(Array.from(epochPermutation(43, 0, 1000)));
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('covers an epoch exactly once, never crossing the epoch boundary', () => {
    let cursor = freshCursor();
    const seen = new Set<number>();
    // 11 shards cover 1050 samples: ten of 100 and a last one of 50 (it does not reach into epoch 1).
    for (const count of [3, 3, 3, 2]) {
      const { shards, cursor: next } = takeShards(cursor, count, 100, 1050);
      cursor = next;
      for (const s of shards) {
        expect(s.epoch).toBe(0);
        for (let k = s.start; k < s.start + s.count; k++) {
          expect(seen.has(k)).toBe(false);
          seen.add(k);
        }
      }
    }
    expect(seen.size).toBe(1050);
    const { shards } = takeShards(cursor, 1, 100, 1050);
    expect(shards[0]).toEqual({ epoch: 1, start: 0, count: 100 });
  });

  it('hands returned shards out again before fresh data, splitting large ones', () => {
    const cursor = returnShards({ epoch: 0, position: 500, pending: [] }, [{ epoch: 0, start: 100, count: 150 }]);
    const { shards, cursor: next } = takeShards(cursor, 3, 100, 1000);
    expect(shards).toEqual([
      { epoch: 0, start: 100, count: 100 },
      { epoch: 0, start: 200, count: 50 },
      { epoch: 0, start: 500, count: 100 },
    ]);
    expect(next.pending).toEqual([]);
    expect(next.position).toBe(600);
  });
});

describe('takeShards with a size per node', () => {
  it('hands returned pieces to the smallest requests and adds their shortfall to the largest fresh one', () => {
    const cursor = { epoch: 0, position: 500, pending: [{ epoch: 0, start: 100, count: 3 }] };
    const { shards, cursor: next } = takeShards(cursor, 3, [200, 8, 40], 1000);
    expect(shards).toEqual([
      { epoch: 0, start: 540, count: 205 }, // 200 asked + the 5 the returned piece fell short of node 2's 8
      { epoch: 0, start: 100, count: 3 },
      { epoch: 0, start: 500, count: 40 },
    ]);
    expect(shards.reduce((a, s) => a + s.count, 0)).toBe(248);
    expect(next).toEqual({ epoch: 0, position: 745, pending: [] });
  });

  it('one size for all keeps the order and the sizes it always had', () => {
    const cursor = { epoch: 0, position: 500, pending: [{ epoch: 0, start: 100, count: 3 }] };
    expect(takeShards(cursor, 2, 50, 1000).shards).toEqual([
      { epoch: 0, start: 100, count: 3 },
      { epoch: 0, start: 500, count: 50 },
    ]);
  });
});
