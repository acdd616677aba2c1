// Local steps and compression policies, pure: the outer Nesterov step (exact numbers both optimizer
// implementations are held to), the choice of H from measured times, the codec from measured bandwidth, and the
// local-steps strategy's round sizing.
import { describe, expect, it } from 'vitest';
import { chooseCodec, chooseLocalSteps, INITIAL_AUTO_LOCAL_STEPS, MAX_AUTO_LOCAL_STEPS } from '../../src/server/core/adaptive';
import { strategyFor } from '../../src/server/core/engine/strategy';
import { applyNesterovStep, createOuterOptimizerState } from '../../src/server/core/optimizer';
import { DEFAULT_SESSION_CONFIG } from '../../src/server/core/session-config';
import { InnerOptimizerState } from '../../src/ml/inner-optimizer';
import { applyOptimizerStep, createOptimizerState } from '../../src/server/core/optimizer';
import { DEFAULT_OPTIMIZER } from '../../src/server/core/types';

describe('outer optimizer: SGD with Nesterov momentum (PyTorch formulation)', () => {
  it('matches hand-computed steps: b = mu b + g; p -= lr (g + mu b)', () => {
    const params = new Float32Array([1, -2]);
    const state = createOuterOptimizerState(2);
    const config = { learningRate: 0.7, momentum: 0.9 };
    applyNesterovStep(config, state, params, new Float32Array([0.1, 0.2]));
    // b = [0.1, 0.2]; update = [0.19, 0.38]; p = [1 - 0.133, -2 - 0.266]
    expect(params[0]).toBeCloseTo(0.867, 6);
    expect(params[1]).toBeCloseTo(-2.266, 6);
    expect(state.slots[0][0]).toBeCloseTo(0.1, 7);
    applyNesterovStep(config, state, params, new Float32Array([0.1, -0.1]));
    // b = [0.19, 0.08]; update = [0.271, -0.028]; p = [0.867 - 0.1897, -2.266 + 0.0196]
    expect(params[0]).toBeCloseTo(0.6773, 6);
    expect(params[1]).toBeCloseTo(-2.2464, 6);
    expect(state.slots[0][1]).toBeCloseTo(0.08, 7);
    expect(state.step).toBe(2);
  });

  it('with momentum 0 and lr 1 applies the pseudo-gradient exactly (FedAvg: the mean of the nodes\' weights)', () => {
    const params = new Float32Array([0.5, 0.25, -1]);
    applyNesterovStep({ learningRate: 1, momentum: 0 }, createOuterOptimizerState(3), params, new Float32Array([0.5, -0.25, -1]));
    expect(Array.from(params)).toEqual([0, 0.5, 0]);
  });
});

describe('inner optimizer on the agent', () => {
  it('takes the same steps as the coordinator\'s optimizer (SGD with momentum, Adam)', () => {
    for (const name of ['sgd', 'adam'] as const) {
      const config = { ...DEFAULT_OPTIMIZER[name], learningRate: 0.01 };
      const a = new Float32Array([0.3, -0.7, 1.2]);
      const b = Float32Array.from(a);
      const inner = new InnerOptimizerState(config, 3);
      const state = createOptimizerState(config, 3);
      for (let s = 0; s < 5; s++) {
        const g = new Float32Array([0.1 * s, -0.2, 0.05 * (s - 2)]);
        inner.step(a, g);
        applyOptimizerStep(config, state, b, g);
      }
      expect(Array.from(a)).toEqual(Array.from(b));
    }
  });
});

describe('choosing H from measured times', () => {
  it('keeps communication at most 10% of the round', () => {
    // 20 ms per step, 180 ms of communication: H = 180 * 0.9 / (0.1 * 20) = 81.
    expect(chooseLocalSteps({ msPerStep: 20, commMsPerRound: 180 })).toBe(81);
    const h = chooseLocalSteps({ msPerStep: 7, commMsPerRound: 50 });
    expect(50 / (50 + h * 7)).toBeLessThanOrEqual(0.1);
    expect(50 / (50 + (h - 1) * 7)).toBeGreaterThan(0.1);
    expect(chooseLocalSteps({ msPerStep: 10, commMsPerRound: 100, maxCommShare: 0.5 })).toBe(10);
  });

  it('is 1 when communication is free, bounded above, and a small default before anything was measured', () => {
    expect(chooseLocalSteps({ msPerStep: 10, commMsPerRound: 0 })).toBe(1);
    expect(chooseLocalSteps({ msPerStep: 0.01, commMsPerRound: 10_000 })).toBe(MAX_AUTO_LOCAL_STEPS);
    expect(chooseLocalSteps({ msPerStep: null, commMsPerRound: 100 })).toBe(INITIAL_AUTO_LOCAL_STEPS);
    expect(chooseLocalSteps({ msPerStep: 10, commMsPerRound: null })).toBe(INITIAL_AUTO_LOCAL_STEPS);
    expect(chooseLocalSteps({ msPerStep: Number.NaN, commMsPerRound: 5 })).toBe(INITIAL_AUTO_LOCAL_STEPS);
    expect(() => chooseLocalSteps({ msPerStep: 1, commMsPerRound: 1, maxCommShare: 1 })).toThrow(RangeError);
  });
});

describe('choosing a codec from measured bandwidth', () => {
  const P = 109_386; // the MLP: 437,544 bytes as float32
  it('takes the least lossy codec whose upload fits 10% of the round\'s compute', () => {
    // 1 s of compute: 100 ms of upload allowed.
    expect(chooseCodec({ uploadBytesPerSecond: 10e6, paramCount: P, roundComputeMs: 1000 })).toBe('float32'); // 44 ms
    expect(chooseCodec({ uploadBytesPerSecond: 3e6, paramCount: P, roundComputeMs: 1000 })).toBe('fp16'); // 146 / 73 ms
    expect(chooseCodec({ uploadBytesPerSecond: 1.5e6, paramCount: P, roundComputeMs: 1000 })).toBe('int8'); // 146 / 74 ms
    expect(chooseCodec({ uploadBytesPerSecond: 200e3, paramCount: P, roundComputeMs: 1000 })).toBe('top-k');
    expect(chooseCodec({ uploadBytesPerSecond: 1e3, paramCount: P, roundComputeMs: 1000 })).toBe('top-k');
  });

  it('stays lossless while the bandwidth is unknown', () => {
    expect(chooseCodec({ uploadBytesPerSecond: null, paramCount: P, roundComputeMs: 1000 })).toBe('float32');
    expect(chooseCodec({ uploadBytesPerSecond: 0, paramCount: P, roundComputeMs: 1000 })).toBe('float32');
  });
});

const candidates = (...ids: number[]) => ids.map((id) => ({ id, samplesPerSecond: 1000, measured: true }));

describe('local-steps strategy', () => {
  it('sizes a round as H x batchSize per node and applies the outer Nesterov step', () => {
    const strategy = strategyFor({ ...DEFAULT_SESSION_CONFIG, batchSize: 32, localSteps: 8 });
    expect(strategy.configureRound(candidates(1, 2))).toEqual({ samplesPerNode: 256, localSteps: 8 });
    const state = strategy.createOptimizerState(2);
    const params = new Float32Array([1, -2]);
    strategy.applyAggregate(state, params, new Float32Array([0.1, 0.2]));
    expect(params[0]).toBeCloseTo(0.867, 6);
  });

  it('chooses H per round when set to auto, and stays synchronous for H = 1', () => {
    const auto = strategyFor({ ...DEFAULT_SESSION_CONFIG, batchSize: 32, localSteps: 'auto' });
    expect(auto.configureRound(candidates(1), { msPerStep: 20, commMsPerRound: 180 })).toEqual({ samplesPerNode: 81 * 32, localSteps: 81 });
    expect(auto.configureRound(candidates(1))).toEqual({ samplesPerNode: INITIAL_AUTO_LOCAL_STEPS * 32, localSteps: INITIAL_AUTO_LOCAL_STEPS });
    expect(strategyFor({ ...DEFAULT_SESSION_CONFIG, localSteps: 1 }).configureRound(candidates(1))).toEqual({ samplesPerNode: 128 });
  });
});
