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
