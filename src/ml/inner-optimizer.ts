// The optimizer an agent runs its local steps with (DiLoCo's inner optimizer), over the model's flat parameter
// vector: the same formulas as the coordinator's SGD-with-momentum and Adam (src/server/core/optimizer.ts),
// kept here because the agent ships without the coordinator. State lives as long as the agent trains the same
// session (DiLoCo keeps each worker's inner Adam state across outer steps).
import type { InnerOptimizer } from '../protocol/messages';

export class InnerOptimizerState {
  private readonly m: Float32Array;
  private readonly v: Float32Array | null;
  private steps = 0;

  constructor(
    readonly config: InnerOptimizer,
    readonly paramCount: number,
  ) {
    this.m = new Float32Array(paramCount);
    this.v = config.name === 'adam' ? new Float32Array(paramCount) : null;
  }

  /** Whether this state belongs to that optimizer setting (a new setting starts from zero). */
  matches(config: InnerOptimizer, paramCount: number): boolean {
    const c = this.config;
    return (
      paramCount === this.paramCount &&
      c.name === config.name &&
      c.learningRate === config.learningRate &&
      c.momentum === config.momentum &&
      c.beta1 === config.beta1 &&
      c.beta2 === config.beta2 &&
      c.epsilon === config.epsilon
    );
  }

  /** params -= update(grad), in place. */
  step(params: Float32Array, grad: Float32Array): void {
    if (params.length !== this.paramCount || grad.length !== this.paramCount) {
      throw new RangeError(`inner optimizer holds ${this.paramCount} values; got ${params.length} parameters, ${grad.length} gradients`);
    }
    const { learningRate: lr } = this.config;
    this.steps += 1;
    const m = this.m;
    if (!this.v) {
      const mu = this.config.momentum;
      for (let i = 0; i < params.length; i++) {
        const mi = mu * m[i] + grad[i];
        m[i] = mi;
        params[i] -= lr * mi;
      }
      return;
    }
    const v = this.v;
    const { beta1, beta2, epsilon } = this.config;
    const c1 = 1 - Math.pow(beta1, this.steps);
    const c2 = 1 - Math.pow(beta2, this.steps);
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
}
