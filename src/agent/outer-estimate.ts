// Eager updates for overlap (Kale et al. 2025, "Eager updates for overlapped communication and computation in
// DiLoCo"): while its update travels, the agent trains ahead from where it predicts the next model will be, not
// from its own end weights. The coordinator moves the model by SGD with Nesterov momentum over the aggregated
// pseudo-gradient g (core/optimizer.ts: b = mu b + g; theta -= lr (g + mu b)), so the next model is
//   theta' = theta - lr ((1 + mu) g + mu^2 b),
// with b the momentum before the step. The agent stands in its own update for g (exact for a lone agent with the
// mean, a sample of it otherwise) and tracks b from the models it receives: two consecutive versions give
// d = theta' - theta, hence g = (-d / lr - mu^2 b) / (1 + mu) and b' = mu b + g. A gap in versions forgets b (zero);
// the error of a wrong b shrinks by mu / (1 + mu) per round. With a momentum of 0.9 and lr 0.7 the model moves
// several times the agent's own update, so starting from its end weights would train on a stale point.
import type { Assignment } from '../protocol/messages';

type Outer = NonNullable<NonNullable<Assignment['next']>['outer']>;

export class OuterEstimate {
  private last: { sessionId: number; version: number; values: Float32Array } | null = null;
  private b: Float32Array | null = null;
  private config: Outer | null = null;

  /** Every model the agent receives, in order. */
  observe(sessionId: number, version: number, values: Float32Array): void {
    const last = this.last;
    const same = last !== null && last.sessionId === sessionId && last.values.length === values.length;
    if (same && version === last.version) return;
    if (same && version === last.version + 1 && this.b && this.config) {
      const { learningRate: lr, momentum: mu } = this.config;
      const b = this.b;
      for (let i = 0; i < values.length; i++) {
        const g = (-(values[i] - last.values[i]) / lr - mu * mu * b[i]) / (1 + mu);
        b[i] = mu * b[i] + g;
      }
    } else {
      // A gap in versions, or another session: the momentum is unknown; start again from zero.
      this.b = null;
    }
    if (same) last.values.set(values);
    this.last = { sessionId, version, values: same ? last.values : Float32Array.from(values) };
  }

  /**
   * The predicted next model after `model` (the version this update was computed on) takes `update`, written into
   * `out`; the config is the session's outer optimizer, as the assignment gives it.
   */
  predict(config: Outer, model: Float32Array, update: Float32Array, out: Float32Array): Float32Array {
    const n = model.length;
    if (!this.b || this.b.length !== n || !sameConfig(this.config, config)) this.b = new Float32Array(n);
    this.config = config;
    const { learningRate: lr, momentum: mu } = config;
    const b = this.b;
    for (let i = 0; i < n; i++) out[i] = model[i] - lr * ((1 + mu) * update[i] + mu * mu * b[i]);
    return out;
  }
}

function sameConfig(a: Outer | null, b: Outer): boolean {
  return a !== null && a.learningRate === b.learningRate && a.momentum === b.momentum;
}
