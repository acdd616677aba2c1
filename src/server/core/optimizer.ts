// Server-side optimizers over flat parameter vectors. The coordinator applies the aggregated gradient here,
// so optimizer state lives in one place, is checkpointed with the weights, and survives node churn.
import type { OptimizerConfig } from './types';

export interface OptimizerState {
  /** SGD: [velocity]; Adam: [m, v]. Same layout as the parameters. */
  slots: Float32Array[];
  /** Number of steps applied (Adam's bias correction needs it). */
  step: number;
}

export function createOptimizerState(config: OptimizerConfig, paramCount: number): OptimizerState {
  const slotCount = config.name === 'adam' ? 2 : 1;
  return { slots: Array.from({ length: slotCount }, () => new Float32Array(paramCount)), step: 0 };
}

/** Applies one step in place: params -= update(grad). Throws if shapes disagree (a bug, not bad input). */
export function applyOptimizerStep(config: OptimizerConfig, state: OptimizerState, params: Float32Array, grad: Float32Array): void {
  if (grad.length !== params.length) throw new Error(`gradient has ${grad.length} values, parameters ${params.length}`);
  const lr = config.learningRate;
  state.step += 1;
  if (config.name === 'sgd') {
    const v = state.slots[0];
    const mu = config.momentum;
    for (let i = 0; i < params.length; i++) {
      const vi = mu * v[i] + grad[i];
      v[i] = vi;
      params[i] -= lr * vi;
    }
    return;
  }
  const [m, v] = state.slots;
  const { beta1, beta2, epsilon } = config;
  const c1 = 1 - Math.pow(beta1, state.step);
  const c2 = 1 - Math.pow(beta2, state.step);
  // Fold bias correction into the step size (the form in Kingma & Ba, section 2) to save a division per weight.
  const stepSize = (lr * Math.sqrt(c2)) / c1;
  const eps = epsilon * Math.sqrt(c2);
  for (let i = 0; i < params.length; i++) {
    const g = grad[i];
    const mi = beta1 * m[i] + (1 - beta1) * g;
    const vi = beta2 * v[i] + (1 - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i] -= (stepSize * mi) / (Math.sqrt(vi) + eps);
  }
}

/** The outer optimizer of local-steps rounds (DiLoCo): SGD with Nesterov momentum over pseudo-gradients. */
export interface OuterOptimizerConfig {
  learningRate: number;
  momentum: number;
}

/** DiLoCo's outer settings (Douillard et al. 2023, section 3): lr 0.7, Nesterov momentum 0.9. */
export const DEFAULT_OUTER_OPTIMIZER: OuterOptimizerConfig = { learningRate: 0.7, momentum: 0.9 };

/**
 * One outer step in place, PyTorch's SGD(nesterov=True, dampening=0) formulation: b = mu * b + g, then
 * params -= lr * (g + mu * b), with g the aggregated pseudo-gradient (start weights minus end weights). The
 * SIMD optimizer workers implement the same formula; tests/unit/adaptive.test.ts holds both to exact numbers.
 * State: one slot (b), zero at the start (PyTorch's first step sets b = g, which is the same).
 */
export function applyNesterovStep(config: OuterOptimizerConfig, state: OptimizerState, params: Float32Array, pseudoGradient: Float32Array): void {
  if (pseudoGradient.length !== params.length) throw new Error(`pseudo-gradient has ${pseudoGradient.length} values, parameters ${params.length}`);
  const b = state.slots[0];
  const { learningRate: lr, momentum: mu } = config;
  state.step += 1;
  for (let i = 0; i < params.length; i++) {
    const g = pseudoGradient[i];
    const bi = mu * b[i] + g;
    b[i] = bi;
    params[i] -= lr * (g + mu * bi);
  }
}

export function createOuterOptimizerState(paramCount: number): OptimizerState {
  return { slots: [new Float32Array(paramCount)], step: 0 };
}

/**
 * A strategy's outer step as data, for a kernel that runs it elsewhere than these functions (the WebAssembly
 * optimizer, see OptimizerKernels in ports.ts): Adam as applyOptimizerStep, SGD with momentum as
 * applyOptimizerStep (nesterov false) or applyNesterovStep (nesterov true). A kernel must give these functions'
 * bits exactly: crash recovery replays the journal through them and compares with what the live model held.
 */
export type OuterStepRule =
  | { name: 'adam'; learningRate: number; beta1: number; beta2: number; epsilon: number }
  | { name: 'sgd'; learningRate: number; momentum: number; nesterov: boolean };

export function outerStepRule(config: OptimizerConfig): OuterStepRule {
  const { learningRate, momentum, beta1, beta2, epsilon } = config;
  return config.name === 'adam' ? { name: 'adam', learningRate, beta1, beta2, epsilon } : { name: 'sgd', learningRate, momentum, nesterov: false };
}

export function nesterovStepRule(config: OuterOptimizerConfig): OuterStepRule {
  return { name: 'sgd', learningRate: config.learningRate, momentum: config.momentum, nesterov: true };
}
