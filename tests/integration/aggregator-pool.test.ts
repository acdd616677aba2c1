import { checksum32, inspectPayload } from '../../src/protocol/frame';
// The real aggregator pool: worker threads running the WebAssembly kernel on one shared memory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAggregatorPool, type AggregatorPool } from '../../src/server/adapters/workers/aggregator-pool';
import type { AggregationPlan, UpdateSlot } from '../../src/server/core/ports';
import { aggregateReference, coordinateMedianInto, squaredDistancesFrom, trimmedMeanCountInto } from '../../src/server/core/aggregation';
import { rng } from '../support/random';

function fillRandom(view: Float32Array, seed: number): void {
  const next = rng(seed);
  for (let i = 0; i < view.length; i++) view[i] = (next() * 2 - 1) * 10;
}

/** Each value within 1e-6 of the magnitude of its terms, against a float64 reference (see the unit test). */
function expectCloseToReference(actual: Float32Array, inputs: readonly Float32Array[], weights: readonly number[]): void {
  const total = weights.reduce((a, b) => a + b, 0);
  const w = weights.map((x) => x / total);
  expect(actual.length).toBe(inputs[0].length);
  let worst = 0;
  for (let k = 0; k < actual.length; k++) {
    let sum = 0;
    let scale = 0;
    for (let i = 0; i < inputs.length; i++) {
      const term = w[i] * inputs[i][k];
      sum += term;
      scale += Math.abs(term);
    }
    const err = Math.abs(actual[k] - sum) / Math.max(scale, Number.MIN_VALUE);
    if (err > worst) worst = err;
  }
  expect(worst).toBeLessThan(1e-6);
}

function weightsFor(n: number, seed: number): number[] {
  const next = rng(seed);
  return Array.from({ length: n }, () => 1 + Math.floor(next() * 500));
}

describe('aggregator pool (wasm workers)', () => {
  let pool: AggregatorPool;
  const logs: string[] = [];

  beforeAll(async () => {
    pool = await createAggregatorPool({ workers: 2, backend: 'wasm', log: (line) => logs.push(line) });
  });

  afterAll(async () => {
    await pool?.close();
  });

  it('starts the kernel on worker threads', () => {
    expect(pool.backend).toBe('wasm-simd');
    expect(pool.workerCount).toBe(2);
    expect(logs.some((l) => l.includes('WebAssembly SIMD kernel on 2 worker'))).toBe(true);
  });

  for (const n of [1, 3, 10]) {
    for (const p of [1, 5, 4099, 1_000_003]) {
      it(`matches the float64 reference for N=${n}, P=${p}`, async () => {
        const slots = Array.from({ length: n }, (_, j) => {
          const slot = pool.acquire(p);
          expect(slot.view.byteOffset % 16).toBe(0);
          fillRandom(slot.view, j * 1_000_003 + p);
          return slot;
        });
        const weights = weightsFor(n, p);
        const result = await pool.weightedMean(slots, weights);
        // A fresh array the caller owns, not a view into the pool's memory.
        expect(result.buffer).not.toBeInstanceOf(SharedArrayBuffer);
        expectCloseToReference(result, slots.map((s) => s.view), weights);
        for (const slot of slots) pool.release(slot);
      });
    }
  }

  it('inspects a slot with the SIMD kernel exactly as the JavaScript reference does', () => {
    for (const n of [1, 3, 4, 5, 17, 4099, 1_000_003]) {
      const slot = pool.acquire(n);
      for (let i = 0; i < n; i++) slot.view[i] = Math.sin(i * 1.7) * (i % 7 === 0 ? 1e3 : 1);
      if (n > 10) {
        slot.view[n - 1] = Number.NaN;
        slot.view[5] = Number.POSITIVE_INFINITY;
      }
      const fast = pool.inspect(slot);
      const reference = inspectPayload(slot.view);
      expect(fast.checksum).toBe(reference.checksum);
      expect(fast.checksum).toBe(checksum32(new Uint32Array(slot.view.buffer, slot.view.byteOffset, n)));
      expect(fast.nonFinite).toBe(reference.nonFinite);
      if (n > 10) expect(fast.nonFinite).toBe(2);
      else expect(fast.sumSquares).toBeCloseTo(reference.sumSquares, 6);
      pool.release(slot);
    }
  });

  it('reuses released slots instead of growing', async () => {
    const p = 300_001;
    const first = pool.acquire(p);
    const offset = first.view.byteOffset;
    pool.release(first);
    const second = pool.acquire(p);
    expect(second.id).not.toBe(first.id);
    expect(second.view.byteOffset).toBe(offset);
    pool.release(second);
    const committed = pool.stats().memoryBytes;
    const liveBefore = pool.stats().liveSlots;
    for (let round = 0; round < 20; round++) {
      const slots = [pool.acquire(p), pool.acquire(p), pool.acquire(p)];
      for (const s of slots) s.view.fill(round);
      const mean = await pool.weightedMean(slots, [1, 2, 3]);
      expect(mean[p - 1]).toBeCloseTo(round, 5);
      for (const s of slots) pool.release(s);
    }
    expect(pool.stats().memoryBytes).toBe(committed);
    expect(pool.stats().liveSlots).toBe(liveBefore);
  });

  it('keeps earlier slot views valid when the memory grows', async () => {
    const small = pool.acquire(1000);
    small.view.fill(3);
    const before = pool.stats().memoryBytes;
    // 32M floats (128 MiB) at a time until the memory has grown past what earlier tests committed.
    const big: UpdateSlot[] = [];
    while (pool.stats().memoryBytes === before) big.push(pool.acquire(32 * 1024 * 1024));
    small.view[999] = 5; // written through the view created before the grow
    const other = pool.acquire(1000);
    other.view.fill(1);
    const mean = await pool.weightedMean([small, other], [1, 1]);
    expect(mean[0]).toBe(2);
    expect(mean[999]).toBe(3);
    for (const s of [small, ...big, other]) pool.release(s);
  });

  it('resolves many concurrent calls correctly', async () => {
    const p = 70_001;
    const slots = Array.from({ length: 4 }, (_, j) => {
      const slot = pool.acquire(p);
      fillRandom(slot.view, 99 + j);
      return slot;
    });
    const calls = Array.from({ length: 24 }, (_, c) => {
      const picked = slots.slice(0, 1 + (c % 4));
      const weights = weightsFor(picked.length, c);
      return pool.weightedMean(picked, weights).then((result) => ({ picked, weights, result }));
    });
    for (const { picked, weights, result } of await Promise.all(calls)) {
      expectCloseToReference(result, picked.map((s) => s.view), weights);
    }
    for (const s of slots) pool.release(s);
  });

  it('defers a release until the calls reading the slot are done', async () => {
    const p = 200_000;
    const a = pool.acquire(p);
    const b = pool.acquire(p);
    a.view.fill(2);
    b.view.fill(4);
    const pending = pool.weightedMean([a, b], [1, 1]);
    pool.release(a);
    // Not reused while the call still reads it.
    const c = pool.acquire(p);
    expect(c.view.byteOffset).not.toBe(a.view.byteOffset);
    c.view.fill(100);
    expect((await pending)[p - 1]).toBe(3);
    pool.release(b);
    pool.release(c);
  });

  it('rejects bad arguments with clear errors', async () => {
    const a = pool.acquire(10);
    const b = pool.acquire(11);
    await expect(pool.weightedMean([a, b], [1, 1])).rejects.toThrow(/slot 1 holds 11 values, slot 0 holds 10/);
    await expect(pool.weightedMean([a], [1, 2])).rejects.toThrow(/1 slots but 2 weights/);
    await expect(pool.weightedMean([a], [-1])).rejects.toThrow(/negative/);
    await expect(pool.weightedMean([a], [0])).rejects.toThrow(/sum to 0/);
    await expect(pool.weightedMean([], [])).rejects.toThrow(/no slots/);
    const forged: UpdateSlot = { id: a.id, view: a.view };
    await expect(pool.weightedMean([forged], [1])).rejects.toThrow(/not a live slot/);
    pool.release(a);
    await expect(pool.weightedMean([a], [1])).rejects.toThrow(/not a live slot/);
    expect(() => pool.release(a)).toThrow(/released twice/);
    expect(() => pool.acquire(0)).toThrow(/paramCount/);
    expect(() => pool.acquire(2.5)).toThrow(/paramCount/);
    pool.release(b);
  });

  it('rejects the pending calls of a crashed worker and replaces it', async () => {
    // Three calls queue three long parts on worker 0 (50 inputs of 1M floats: about 100 MB read per part), so
    // when it dies at least the last one is still pending, whatever the timing.
    const p = 1_000_000;
    const slots = Array.from({ length: 50 }, (_, j) => {
      const slot = pool.acquire(p);
      slot.view.fill(j % 10);
      return slot;
    });
    const weights = slots.map(() => 1);
    const calls = [0, 1, 2].map(() =>
      pool.weightedMean(slots, weights).then(
        (mean) => ({ ok: true as const, mean }),
        (err: unknown) => ({ ok: false as const, err }),
      ),
    );
    await pool.crashWorkerForTest(0);
    const outcomes = await Promise.all(calls);
    expect(outcomes[2].ok).toBe(false);
    for (const outcome of outcomes) {
      if (outcome.ok) expect(outcome.mean[0]).toBeCloseTo(4.5, 5);
      else expect(String(outcome.err)).toMatch(/aggregator worker 0 crashed: exited with code 1/);
    }
    // The replacement takes the next calls; the pool keeps working.
    const mean = await pool.weightedMean(slots, weights);
    expect(mean[0]).toBeCloseTo(4.5, 5);
    expect(mean[p - 1]).toBeCloseTo(4.5, 5);
    expect(pool.stats().workerRestarts).toBe(1);
    expect(logs.some((l) => l.startsWith('aggregator: aggregator worker 0 crashed') && l.includes('starting a replacement'))).toBe(true);
    for (const s of slots) pool.release(s);
  });

  it('close() rejects calls in flight, terminates the workers and refuses new work', async () => {
    const own = await createAggregatorPool({ workers: 2, backend: 'wasm' });
    const slots = [own.acquire(2_000_000), own.acquire(2_000_000)];
    const inFlight = expect(own.weightedMean(slots, [1, 1])).rejects.toThrow(/closed/);
    await own.close();
    await inFlight;
    expect(() => own.acquire(10)).toThrow(/closed/);
    await expect(own.weightedMean(slots, [1, 1])).rejects.toThrow(/closed/);
    await own.close(); // idempotent
  });
});

describe('aggregator pool: robust rules (wasm workers)', () => {
  let pool: AggregatorPool;

  beforeAll(async () => {
    pool = await createAggregatorPool({ workers: 2, backend: 'wasm' });
  });

  afterAll(async () => {
    await pool?.close();
  });

  function acquireFilled(n: number, p: number, seed: number): UpdateSlot[] {
    return Array.from({ length: n }, (_, j) => {
      const slot = pool.acquire(p);
      fillRandom(slot.view, seed + j * 7919);
      return slot;
    });
  }

  /** The aggregate equal to the float64 reference's (rounded once to float32), distances within 1e-5. */
  function expectMatchesReference(slots: UpdateSlot[], plan: AggregationPlan, result: Awaited<ReturnType<AggregatorPool['aggregate']>>): void {
    const reference = aggregateReference(slots.map((s) => s.view), plan);
    expect(result.aggregate.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    if (plan.rule === 'weighted-mean') {
      expectCloseToReference(result.aggregate, slots.map((s) => s.view), plan.weights);
    } else if (plan.rule === 'multi-krum') {
      expect(result.kept).toEqual(reference.kept);
      const keptViews = reference.kept!.map((i) => slots[i].view);
      expectCloseToReference(result.aggregate, keptViews, keptViews.map(() => 1));
      for (let i = 0; i < slots.length; i++) {
        expect(Math.abs(result.scores![i] - reference.scores![i])).toBeLessThanOrEqual(1e-5 * reference.scores![i]);
      }
    } else {
      let mismatches = 0;
      for (let k = 0; k < reference.aggregate.length; k++) if (result.aggregate[k] !== reference.aggregate[k]) mismatches++;
      expect(mismatches).toBe(0);
    }
    const exact = squaredDistancesFrom(slots.map((s) => s.view), result.aggregate);
    for (let i = 0; i < slots.length; i++) {
      expect(Math.abs(result.distances[i] - Math.sqrt(exact[i]))).toBeLessThanOrEqual(1e-5 * Math.sqrt(exact[i]) + 1e-30);
    }
  }

  for (const n of [1, 3, 10, 33]) {
    for (const p of n === 33 ? [5, 4099, 100_003] : [5, 4099, 1_000_003]) {
      it(`every rule matches the float64 reference for N=${n}, P=${p}`, async () => {
        const slots = acquireFilled(n, p, n * 31 + p);
        const plans: AggregationPlan[] = [
          { rule: 'weighted-mean', weights: weightsFor(n, p) },
          { rule: 'median' },
          { rule: 'trimmed-mean', trim: Math.floor(n / 10) },
          { rule: 'trimmed-mean', trim: Math.floor((n - 1) / 2) },
        ];
        if (n > 4) plans.push({ rule: 'multi-krum', f: Math.floor((n - 3) / 2), m: n - Math.floor((n - 3) / 2) - 1 });
        for (const plan of plans) expectMatchesReference(slots, plan, await pool.aggregate(slots, plan));
        for (const slot of slots) pool.release(slot);
      });
    }
  }

  it('at the breakdown point: the median and a trimmed mean trimming f stay within the honest values, Multi-Krum drops the f', async () => {
    const n = 11;
    const f = Math.floor((n - 1) / 2);
    const p = 300_007;
    const slots = acquireFilled(n, p, 5);
    const byzantine = [0, 3, 4, 8, 10].slice(0, f);
    const next = rng(17);
    for (const [j, i] of byzantine.entries()) {
      const view = slots[i].view;
      // Scaled, sign-flipped and huge values, different per node and per coordinate.
      for (let k = 0; k < p; k++) view[k] = [3e38, -3e38, 1e4, -1e4, -view[k] * 1e6][(j + Math.floor(next() * 5)) % 5];
    }
    const honest = slots.filter((_, i) => !byzantine.includes(i)).map((s) => s.view);
    const lowest = new Float32Array(p).fill(Infinity);
    const highest = new Float32Array(p).fill(-Infinity);
    for (const h of honest) {
      for (let k = 0; k < p; k++) {
        if (h[k] < lowest[k]) lowest[k] = h[k];
        if (h[k] > highest[k]) highest[k] = h[k];
      }
    }
    for (const plan of [{ rule: 'median' }, { rule: 'trimmed-mean', trim: f }] as AggregationPlan[]) {
      const { aggregate, distances } = await pool.aggregate(slots, plan);
      let outside = 0;
      for (let k = 0; k < p; k++) if (!(aggregate[k] >= lowest[k] && aggregate[k] <= highest[k])) outside++;
      expect(outside).toBe(0);
      // The outlier score tells them apart.
      const worstHonest = Math.max(...distances.filter((_, i) => !byzantine.includes(i)));
      for (const i of byzantine) expect(distances[i]).toBeGreaterThan(100 * worstHonest);
    }
    // Multi-Krum's bound is N > 2f + 2, one fewer than the median's: make the last Byzantine node honest again,
    // and keep N - f. Every Byzantine update is dropped, every honest one kept.
    const krumF = Math.floor((n - 3) / 2);
    fillRandom(slots[byzantine[f - 1]].view, 12345);
    const krum = await pool.aggregate(slots, { rule: 'multi-krum', f: krumF, m: n - krumF });
    expect(krum.kept).toEqual(Array.from({ length: n }, (_, i) => i).filter((i) => !byzantine.slice(0, krumF).includes(i)));
    for (const slot of slots) pool.release(slot);
  });

  it('is exact for ties and both zeros', async () => {
    const values = [-0, 0, 1, -1, 1, 0, -0, 2];
    const p = 4099;
    const slots = Array.from({ length: 8 }, (_, j) => {
      const slot = pool.acquire(p);
      for (let k = 0; k < p; k++) slot.view[k] = values[(j * 3 + k) % values.length];
      return slot;
    });
    const views = slots.map((s) => s.view);
    const median = await pool.aggregate(slots, { rule: 'median' });
    const trimmed = await pool.aggregate(slots, { rule: 'trimmed-mean', trim: 3 });
    const medianRef = coordinateMedianInto(new Float32Array(p), views);
    const trimmedRef = trimmedMeanCountInto(new Float32Array(p), views, 3);
    for (let k = 0; k < p; k++) {
      expect(median.aggregate[k] === medianRef[k]).toBe(true);
      expect(trimmed.aggregate[k] === trimmedRef[k]).toBe(true);
    }
    for (const slot of slots) pool.release(slot);
  });

  it('runs concurrent calls of different rules correctly and frees what it allocated', async () => {
    const p = 70_001;
    const slots = acquireFilled(7, p, 99);
    const committed = pool.stats().memoryBytes;
    const plans: AggregationPlan[] = [{ rule: 'median' }, { rule: 'trimmed-mean', trim: 2 }, { rule: 'multi-krum', f: 2, m: 3 }, { rule: 'weighted-mean', weights: [1, 2, 3, 4, 5, 6, 7] }];
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(plans.map((plan) => pool.aggregate(slots, plan)));
      results.forEach((result, i) => expectMatchesReference(slots, plans[i], result));
    }
    expect(pool.stats().memoryBytes).toBe(committed);
    for (const slot of slots) pool.release(slot);
  });

  it('rejects bad plans with clear errors', async () => {
    const slots = acquireFilled(4, 10, 1);
    await expect(pool.aggregate(slots, { rule: 'trimmed-mean', trim: 2 })).rejects.toThrow(/trim is 2 with 4 inputs/);
    await expect(pool.aggregate(slots, { rule: 'multi-krum', f: 1, m: 2 })).rejects.toThrow(/N > 2f \+ 2/);
    await expect(pool.aggregate(slots, { rule: 'weighted-mean', weights: [1] })).rejects.toThrow(/4 slots but 1 weights/);
    await expect(pool.aggregate([], { rule: 'median' })).rejects.toThrow(/no slots/);
    const other = pool.acquire(11);
    await expect(pool.aggregate([slots[0], other], { rule: 'median' })).rejects.toThrow(/aggregate: slot 1 holds 11 values/);
    for (const slot of [...slots, other]) pool.release(slot);
    await expect(pool.aggregate(slots, { rule: 'median' })).rejects.toThrow(/not a live slot/);
  });

  it('the JS fallback gives the same results for every rule', async () => {
    const js = await createAggregatorPool({ backend: 'js' });
    const p = 4099;
    const wasmSlots = acquireFilled(9, p, 3);
    const jsSlots = wasmSlots.map((s) => {
      const slot = js.acquire(p);
      slot.view.set(s.view);
      return slot;
    });
    for (const plan of [{ rule: 'median' }, { rule: 'trimmed-mean', trim: 2 }, { rule: 'multi-krum', f: 3, m: 4 }] as AggregationPlan[]) {
      const fromJs = await js.aggregate(jsSlots, plan);
      const fromWasm = await pool.aggregate(wasmSlots, plan);
      expect(fromWasm.kept).toEqual(fromJs.kept);
      if (plan.rule === 'multi-krum') {
        // The mean of the kept: float32 kernel against float64 reference, within the weighted mean's bound.
        const kept = fromJs.kept!.map((i) => jsSlots[i].view);
        expectCloseToReference(fromWasm.aggregate, kept, kept.map(() => 1));
      } else {
        expect(Array.from(fromWasm.aggregate)).toEqual(Array.from(fromJs.aggregate));
      }
      for (let i = 0; i < 9; i++) expect(Math.abs(fromWasm.distances[i] - fromJs.distances[i])).toBeLessThanOrEqual(1e-5 * fromJs.distances[i]);
    }
    for (const slot of wasmSlots) pool.release(slot);
    await js.close();
  });
});

describe('aggregator pool (JS fallback)', () => {
  it('gives the same results on the main thread and says so once', async () => {
    const logs: string[] = [];
    const pool = await createAggregatorPool({ backend: 'js', log: (line) => logs.push(line) });
    expect(pool.backend).toBe('js');
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/JS reference/);
    const slots = Array.from({ length: 3 }, (_, j) => {
      const slot = pool.acquire(4099);
      fillRandom(slot.view, j);
      return slot;
    });
    const weights = [5, 1, 2];
    expectCloseToReference(await pool.weightedMean(slots, weights), slots.map((s) => s.view), weights);
    const view = slots[0].view;
    pool.release(slots[0]);
    expect(pool.acquire(4099).view).toBe(view);
    await pool.close();
  });

  it('enforces maxBytes', async () => {
    const pool = await createAggregatorPool({ backend: 'js', maxBytes: 1 << 20 });
    pool.acquire(200_000);
    expect(() => pool.acquire(200_000)).toThrow(/memory exhausted/);
    await pool.close();
  });
});

describe('aggregator pool memory limit', () => {
  it('refuses slots beyond maxBytes with a clear error', async () => {
    const pool = await createAggregatorPool({ workers: 1, backend: 'wasm', maxBytes: 32 * 1024 * 1024 });
    pool.acquire(5_000_000);
    expect(() => pool.acquire(5_000_000)).toThrow(/memory exhausted.*maxBytes/);
    await pool.close();
  });
});
