// Work sized to capacity: the pure share function, and the engine sizing rounds from the speeds it measures.
import { describe, expect, it } from 'vitest';
import { shareSamples, sizingSpeeds } from '../../src/server/core/engine/work-sizing';
import { CAPS, EngineDriver } from '../support/engine-driver';

describe('shareSamples', () => {
  it('splits the global batch in proportion to speed, in integers that sum to it exactly', () => {
    expect(shareSamples(700, [400, 200, 100])).toEqual([400, 200, 100]);
    const shares = shareSamples(1000, [3, 3, 3]);
    expect(shares.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
    for (let n = 1; n <= 40; n++) {
      const speeds = Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % 13));
      const s = shareSamples(997, speeds);
      expect(s.reduce((a, b) => a + b, 0)).toBe(997);
      s.forEach((x, i) => expect(Math.abs(x - (997 * speeds[i]) / speeds.reduce((a, b) => a + b, 0))).toBeLessThan(8 + 1));
    }
  });

  it('keeps the global batch whatever the node count: a node joining changes the shares, not the sum', () => {
    for (const speeds of [[100], [100, 100], [100, 100, 50, 25]]) expect(shareSamples(256, speeds).reduce((a, b) => a + b, 0)).toBe(256);
  });

  it('gives every node at least the minimum share, taken from the fast ones', () => {
    const s = shareSamples(256, [10_000, 1], 16);
    expect(s).toEqual([240, 16]);
  });

  it('counts an unmeasured node as the median speed', () => {
    expect(shareSamples(300, [100, 0, 200])).toEqual([75, 75, 150]);
    expect(shareSamples(300, [NaN, -1, 0])).toEqual([100, 100, 100]);
  });

  it('leaves the slowest out (share 0) when the batch cannot give everyone the minimum', () => {
    const s = shareSamples(20, [5, 1, 4, 3], 8);
    expect(s.reduce((a, b) => a + b, 0)).toBe(20);
    expect(s[1]).toBe(0);
    expect(s[3]).toBe(0);
    expect(s[0]).toBeGreaterThanOrEqual(8);
  });
});

describe('sizingSpeeds', () => {
  it('believes claims while nothing is measured, then caps an unmeasured claim at the median measured speed', () => {
    expect(sizingSpeeds([{ samplesPerSecond: 500, measured: false }, { samplesPerSecond: 100, measured: false }])).toEqual([500, 100]);
    const speeds = sizingSpeeds([
      { samplesPerSecond: 100, measured: true },
      { samplesPerSecond: 300, measured: true },
      { samplesPerSecond: 200, measured: true },
      { samplesPerSecond: 1e9, measured: false },
      { samplesPerSecond: 50, measured: false },
      { samplesPerSecond: 0, measured: false },
    ]);
    expect(speeds).toEqual([100, 300, 200, 200, 50, 200]);
  });
});

describe('rounds sized to measured speed (engine, fake clock)', () => {
  it('a node joining or leaving changes who does the work, not the size of the step', () => {
    const d = new EngineDriver();
    d.start({ globalBatch: 256, minCompletion: 0.1, evalEvery: 1000 }, 1_000_000);
    const sizes: number[][] = [];
    const round = () => [...d.state.round!.open.assignments.values()].map((a) => a.shardCount);
    d.join(1);
    sizes.push(round());
    d.deliver(1);
    d.join(2);
    d.join(3);
    d.deliver(1); // round 2 was node 1's alone; round 3 has all three
    sizes.push(round());
    d.deliver(1);
    d.deliver(2);
    d.lose(3); // mid-round: round 3 closes with two updates, its shard goes back, round 4 is for two
    sizes.push(round());
    expect(sizes).toEqual([[256], [240, 8, 8], [248, 8]]);
    expect(sizes.map((s) => s.length)).toEqual([1, 3, 2]);
    for (const s of sizes) expect(s.reduce((a, b) => a + b, 0)).toBe(256);
  });

  it('a newcomer claiming a billion samples/s gets a typical share, not the whole batch', () => {
    const d = new EngineDriver();
    d.start({ globalBatch: 300, minCompletion: 1, evalEvery: 1000 }, 1_000_000);
    d.join(1, 'n1', { ...CAPS, samplesPerSecond: 100 });
    d.advance(1000);
    d.deliver(1); // measured: 100 samples/s... of a 300-sample shard in 1 s: 300/s, smoothed
    d.join(2, 'liar', { ...CAPS, samplesPerSecond: 1e9 });
    d.advance(1000);
    d.deliver(1);
    const shares = [...d.state.round!.open.assignments.values()].map((a) => a.shardCount);
    expect(shares.reduce((a, b) => a + b, 0)).toBe(300);
    expect(Math.max(...shares)).toBeLessThanOrEqual(150);
  });

  /**
   * Three nodes whose true speeds are 400, 200 and 100 samples/s, all calibrated at 100 (they look alike at
   * join). Each round, every node delivers when its shard would be done at its true speed. Returns each
   * round's wall time and the slowest node's share.
   */
  function run(globalBatch: number | undefined, rounds: number) {
    const truth = new Map([
      [1, 400],
      [2, 200],
      [3, 100],
    ]);
    const d = new EngineDriver();
    d.start({ batchSize: 300, ...(globalBatch ? { globalBatch } : {}), minCompletion: 1, evalEvery: 1000 }, 1_000_000);
    for (const id of truth.keys()) d.join(id, `n${id}`, { ...CAPS, samplesPerSecond: 100 });
    const out: { ms: number; slowShare: number; total: number }[] = [];
    while (out.length < rounds) {
      // The first round opens as soon as the first node is ready: it runs alone until everyone is in.
      const shares = [...d.state.round!.open.assignments.values()];
      const all = shares.length === truth.size;
      const finish = shares.map((a) => ({ id: a.nodeId, ms: Math.round((a.shardCount / truth.get(a.nodeId)!) * 1000) })).sort((a, b) => a.ms - b.ms);
      let elapsed = 0;
      for (const f of finish) {
        d.advance(f.ms - elapsed);
        elapsed = f.ms;
        d.deliver(f.id);
      }
      if (all) out.push({ ms: elapsed, slowShare: shares.find((a) => a.nodeId === 3)!.shardCount, total: shares.reduce((a, s) => a + s.shardCount, 0) });
    }
    return out;
  }

  it('the slowest node’s share tracks its speed, the step stays the global batch, and rounds get faster than equal shares', () => {
    const sized = run(700, 12);
    const equal = run(undefined, 12);
    for (const r of sized) expect(r.total).toBe(700);
    // Measured speed converges to the truth: the slow node ends up with about a seventh of the batch.
    expect(sized.at(-1)!.slowShare).toBeGreaterThanOrEqual(90);
    expect(sized.at(-1)!.slowShare).toBeLessThanOrEqual(120);
    // Equal shares of 300 each (900 samples): the slow node takes 3 s; sized shares of 700 finish in about 1 s.
    expect(equal.at(-1)!.ms).toBe(3000);
    expect(sized.at(-1)!.ms).toBeLessThan(1300);
    // Per sample, too: the sized round spends far less time per sample than the equal one.
    expect(sized.at(-1)!.ms / 700).toBeLessThan((equal.at(-1)!.ms / 900) * 0.6);
  });
});
