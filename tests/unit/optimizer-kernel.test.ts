// The optimizer kernel (optimizer.wat through ResidentOptimizer) against the reference in core/optimizer.ts, bit
// for bit: Adam, SGD with momentum, and the outer SGD with Nesterov of local-steps sessions, over several steps,
// odd and even lengths (the kernel's scalar tail), and gradients spanning many magnitudes. Equality, not a
// tolerance: the live model steps in the kernel while crash recovery replays the journal through the reference,
// and the recovered model must be the same bytes. Also its checksums (computed by the step, and by a pass of
// its own before any step) against protocol/frame.ts's checksum32.
import { describe, expect, it } from 'vitest';
import { checksum32 } from '../../src/protocol/frame';
import { ResidentOptimizer } from '../../src/server/adapters/workers/resident-optimizer';
import { applyNesterovStep, applyOptimizerStep, createOptimizerState, createOuterOptimizerState, DEFAULT_OUTER_OPTIMIZER, nesterovStepRule, outerStepRule, type OptimizerState } from '../../src/server/core/optimizer';
import { DEFAULT_OPTIMIZER } from '../../src/server/core/types';
import { randomInputs } from '../support/random';

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Index of the first value whose bits differ, or -1 (a readable failure instead of a million-element diff). */
function firstDifference(a: Float32Array, b: Float32Array): number {
  const x = bits(a);
  const y = bits(b);
  if (x.length !== y.length) return 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

/** Gradients of every scale the optimizer meets: tiny, ordinary, large, exact zeros, both signs. */
function gradientsFor(p: number, steps: number, seed: number): Float32Array[] {
  return randomInputs(steps, p, seed).map((g, k) => g.map((x, i) => (i % 97 === 96 ? 0 : x * 10 ** (((i + 4) % 9) - 6 + (k % 3)))));
}

const rules = [
  ['adam', outerStepRule(DEFAULT_OPTIMIZER.adam), (s: OptimizerState, p: Float32Array, g: Float32Array) => applyOptimizerStep(DEFAULT_OPTIMIZER.adam, s, p, g), (n: number) => createOptimizerState(DEFAULT_OPTIMIZER.adam, n)],
  ['sgd (momentum)', outerStepRule(DEFAULT_OPTIMIZER.sgd), (s: OptimizerState, p: Float32Array, g: Float32Array) => applyOptimizerStep(DEFAULT_OPTIMIZER.sgd, s, p, g), (n: number) => createOptimizerState(DEFAULT_OPTIMIZER.sgd, n)],
  ['sgd (Nesterov, outer)', nesterovStepRule(DEFAULT_OUTER_OPTIMIZER), (s: OptimizerState, p: Float32Array, g: Float32Array) => applyNesterovStep(DEFAULT_OUTER_OPTIMIZER, s, p, g), createOuterOptimizerState],
] as const;

describe('optimizer.wasm', () => {
  for (const [name, rule, reference, createState] of rules) {
    it.each([10_007, 10_000, 3, 2, 1])(`${name} over %i parameters gives core/optimizer.ts's bits exactly over 8 steps`, (p) => {
      const [init] = randomInputs(1, p, p + name.length);
      const resident = new ResidentOptimizer(rule, p);
      resident.params.set(init);
      const params = init.slice();
      const state = createState(p);
      for (const grad of gradientsFor(p, 8, p * 7 + name.length)) {
        reference(state, params, grad);
        resident.apply(grad);
        // The step's own checksum of the parameters it wrote (the model frame's), tail words included.
        expect(resident.checksum()).toBe(checksum32(bits(resident.params)));
      }
      expect(resident.step).toBe(state.step);
      expect(firstDifference(resident.params, params), 'first parameter whose bits differ').toBe(-1);
      state.slots.forEach((slot, i) => expect(firstDifference(resident.slots[i], slot), `slot ${i}: first value whose bits differ`).toBe(-1));
      // And the step did something: the parameters moved.
      expect(resident.params.some((v, i) => v !== init[i])).toBe(true);
    });
  }

  it('continues exactly from state written into it (a checkpoint loaded, then steps in the kernel)', () => {
    const p = 4099;
    const config = DEFAULT_OPTIMIZER.adam;
    const [init] = randomInputs(1, p, 11);
    const grads = gradientsFor(p, 6, 12);
    const params = init.slice();
    const state = createOptimizerState(config, p);
    for (const g of grads.slice(0, 3)) applyOptimizerStep(config, state, params, g);
    const resident = new ResidentOptimizer(outerStepRule(config), p);
    resident.params.set(params);
    state.slots.forEach((s, i) => resident.state.slots[i].set(s));
    resident.state.step = state.step;
    for (const g of grads.slice(3)) {
      applyOptimizerStep(config, state, params, g);
      resident.apply(g);
    }
    expect(firstDifference(resident.params, params)).toBe(-1);
  });

  it('SGD with Nesterov follows PyTorch (b = mu b + g; p -= lr (g + mu b)), and differs from plain momentum', () => {
    const p = 1001;
    const [init, ...grads] = randomInputs(5, p, 3);
    const resident = new ResidentOptimizer(nesterovStepRule(DEFAULT_OUTER_OPTIMIZER), p);
    const plain = new ResidentOptimizer({ name: 'sgd', learningRate: DEFAULT_OUTER_OPTIMIZER.learningRate, momentum: DEFAULT_OUTER_OPTIMIZER.momentum, nesterov: false }, p);
    resident.params.set(init);
    plain.params.set(init);
    const { learningRate: lr, momentum: mu } = DEFAULT_OUTER_OPTIMIZER;
    const params = Float64Array.from(init);
    const buf = new Float64Array(p);
    for (const g of grads) {
      for (let i = 0; i < p; i++) {
        buf[i] = mu * buf[i] + g[i];
        params[i] -= lr * (g[i] + mu * buf[i]);
      }
      resident.apply(g);
      plain.apply(g);
    }
    let worst = 0;
    for (let i = 0; i < p; i++) worst = Math.max(worst, Math.abs(resident.params[i] - params[i]) / Math.max(Math.abs(params[i]), 1e-3));
    expect(worst).toBeLessThanOrEqual(1e-5);
    expect(plain.params.some((v, i) => Math.abs(v - resident.params[i]) > 1e-3)).toBe(true);
  });

  it.each([0, 1, 2, 3, 4, 5, 7, 8, 1023, 100_003])('checksum over %i resident parameters before any step equals checksum32', (p) => {
    const resident = new ResidentOptimizer(outerStepRule(DEFAULT_OPTIMIZER.sgd), p);
    const [values] = randomInputs(1, Math.max(p, 1), p + 5);
    resident.params.set(values.subarray(0, p));
    expect(resident.checksum()).toBe(checksum32(bits(resident.params)));
    if (p > 0) {
      resident.params[p - 1] += 1; // the last word (a tail word when p % 4 != 0) counts
      expect(resident.checksum()).toBe(checksum32(bits(resident.params)));
    }
  });

  it('refuses a gradient of the wrong length', () => {
    expect(() => new ResidentOptimizer(outerStepRule(DEFAULT_OPTIMIZER.adam), 8).apply(new Float32Array(7))).toThrow(/7 values/);
  });
});
