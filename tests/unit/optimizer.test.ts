import { describe, expect, it } from 'vitest';
import { applyOptimizerStep, createOptimizerState } from '../../src/server/core/optimizer';
import { DEFAULT_OPTIMIZER } from '../../src/server/core/types';

describe('optimizers', () => {
  it('SGD with momentum matches the textbook recurrence', () => {
    const config = { ...DEFAULT_OPTIMIZER.sgd, learningRate: 0.1, momentum: 0.9 };
    const state = createOptimizerState(config, 1);
    const p = new Float32Array([1]);
    applyOptimizerStep(config, state, p, new Float32Array([1])); // v=1, p=0.9
    applyOptimizerStep(config, state, p, new Float32Array([1])); // v=1.9, p=0.71
    expect(p[0]).toBeCloseTo(0.71, 6);
    expect(state.step).toBe(2);
  });

  it('Adam takes a first step of about lr in the gradient sign, whatever the gradient scale', () => {
    for (const scale of [1e-4, 1, 1e4]) {
      const config = { ...DEFAULT_OPTIMIZER.adam, learningRate: 0.01 };
      const state = createOptimizerState(config, 2);
      const p = new Float32Array([0, 0]);
      applyOptimizerStep(config, state, p, new Float32Array([scale, -scale]));
      expect(p[0]).toBeCloseTo(-0.01, 4);
      expect(p[1]).toBeCloseTo(0.01, 4);
    }
  });

  it('minimises a quadratic', () => {
    for (const name of ['sgd', 'adam'] as const) {
      const config = { ...DEFAULT_OPTIMIZER[name], learningRate: name === 'sgd' ? 0.05 : 0.1 };
      const state = createOptimizerState(config, 3);
      const target = [3, -2, 0.5];
      const p = new Float32Array(3);
      for (let step = 0; step < 500; step++) {
        const g = new Float32Array(target.map((t, i) => 2 * (p[i] - t)));
        applyOptimizerStep(config, state, p, g);
      }
      target.forEach((t, i) => expect(p[i]).toBeCloseTo(t, 2));
    }
  });
});
