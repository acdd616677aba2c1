// The optimizer kernel (optimizer.wat through ResidentOptimizer) against the reference in core/optimizer.ts: Adam
// and SGD with momentum, several steps, lengths with a scalar tail; and SGD with Nesterov against PyTorch's
// formula (b = mu b + g; p -= lr (g + mu b)), written out here until core/optimizer.ts has the flag.
import { describe, expect, it } from 'vitest';
import { ResidentOptimizer } from '../../src/server/adapters/workers/resident-optimizer';
import { applyOptimizerStep, createOptimizerState } from '../../src/server/core/optimizer';
import { DEFAULT_OPTIMIZER } from '../../src/server/core/types';
import { randomInputs } from '../support/random';

/**
 * Relative to each value's own scale: its magnitude, or, for parameters, the larger of where it started and where
 * it is (a parameter that moved through zero would make a bare relative difference meaningless).
 */
function expectRelClose(actual: Float32Array, expected: Float32Array, what: string, start?: Float32Array): void {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const scale = Math.max(Math.abs(expected[i]), Math.abs(actual[i]), start ? Math.abs(start[i]) : 0, 1e-30);
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / scale);
  }
  expect(worst, `${what}: worst relative difference`).toBeLessThanOrEqual(1e-6);
}

describe('optimizer.wasm', () => {
  it.each([
    ['adam', 10_007],
    ['adam', 3],
    ['sgd', 10_007],
    ['sgd', 5],
  ] as const)('%s over %i parameters matches core/optimizer.ts within 1e-6 relative over 6 steps', (name, p) => {
    const config = DEFAULT_OPTIMIZER[name];
    const [init, ...grads] = randomInputs(7, p, p + name.length);
    const resident = new ResidentOptimizer(config, p);
    resident.params.set(init);
    const params = init.slice();
    const state = createOptimizerState(config, p);
    for (const g of grads) {
      const grad = g.map((x) => x * 0.01);
      applyOptimizerStep(config, state, params, grad);
      resident.apply(grad);
    }
    expect(resident.step).toBe(state.step);
    expectRelClose(resident.params, params, 'params', init);
    // Momentum terms cancel (gradients of either sign), so slots are compared relative to their largest value.
    state.slots.forEach((slot, i) => {
      const scale = slot.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
      const worst = slot.reduce((a, x, j) => Math.max(a, Math.abs(resident.slots[i][j] - x)), 0);
      expect(worst / scale, `slot ${i}: worst difference relative to its largest value`).toBeLessThanOrEqual(1e-6);
    });
    // And the step did something: the parameters moved.
    expect(resident.params.some((v, i) => v !== init[i])).toBe(true);
  });

  it('SGD with Nesterov follows PyTorch (b = mu b + g; p -= lr (g + mu b)), and differs from plain momentum', () => {
    const p = 1001;
    const config = { ...DEFAULT_OPTIMIZER.sgd, nesterov: true };
    const [init, ...grads] = randomInputs(5, p, 3);
    const resident = new ResidentOptimizer(config, p);
    const plain = new ResidentOptimizer(DEFAULT_OPTIMIZER.sgd, p);
    resident.params.set(init);
    plain.params.set(init);
    const params = Float64Array.from(init);
    const buf = new Float64Array(p);
    for (const g of grads) {
      for (let i = 0; i < p; i++) {
        buf[i] = config.momentum * buf[i] + g[i];
        params[i] -= config.learningRate * (g[i] + config.momentum * buf[i]);
      }
      resident.apply(g);
      plain.apply(g);
    }
    let worst = 0;
    for (let i = 0; i < p; i++) worst = Math.max(worst, Math.abs(resident.params[i] - params[i]) / Math.max(Math.abs(params[i]), 1e-3));
    expect(worst).toBeLessThanOrEqual(1e-5);
    expect(plain.params.some((v, i) => Math.abs(v - resident.params[i]) > 1e-3)).toBe(true);
  });

  it('refuses a gradient of the wrong length', () => {
    expect(() => new ResidentOptimizer(DEFAULT_OPTIMIZER.adam, 8).apply(new Float32Array(7))).toThrow(/7 values/);
  });
});
