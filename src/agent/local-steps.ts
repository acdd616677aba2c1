// Local steps (DiLoCo / FedAvg) on the agent: H inner optimizer steps, each on `batchSize` consecutive samples of
// the assigned shard, starting from the model the coordinator sent; the update is start minus end weights (a
// pseudo-gradient), which the coordinator's outer optimizer applies. Also the codec side of every update: the
// encoder keeps the error-feedback residual of lossy codecs for as long as the agent trains one session.
import { InnerOptimizerState } from '../ml/inner-optimizer';
import { CODEC_BY_NAME, ErrorFeedback, FrameCodec } from '../protocol/codecs';
import { encodeCodedFrame, type FrameFields } from '../protocol/frame';
import type { Assignment, InnerOptimizer } from '../protocol/messages';
import type { TrainingSession } from './training-loop';

/** How much work runs between yields to the training thread's event loop. */
const YIELD_EVERY_MS = 25;

export interface LocalStepsResult {
  /** start - end weights (P values). */
  pseudoGradient: Float32Array;
  /** Mean training loss over all samples of all steps (before each step's update). */
  loss: number;
  computeMs: number;
  /** The end weights, when asked for (`keepEnd`): where overlap's next run starts. */
  end?: Float32Array;
}

/**
 * Overlap (lookahead.ts): a run that starts before its model is known, from the agent's own end weights, and
 * re-bases when the model arrives: weights <- model + (weights - start), so the steps already taken are kept as
 * progress, and the pseudo-gradient is taken against the model: model - end.
 */
export interface Rebase {
  /** The model to re-base onto, once it is known (null: not yet); asked before each step. */
  poll(): Float32Array | null;
  /** After the last step: waits for the model (null: the run is abandoned). */
  wait(): Promise<Float32Array | null>;
}

export interface LocalStepsRun {
  prepared: TrainingSession;
  start: Float32Array;
  indices: Uint32Array;
  steps: number;
  stepBatch: number;
  optimizer: InnerOptimizerState;
  microBatch: number;
  now: () => number;
  /** Checked between steps and micro-batches; true stops the run (it returns null). */
  cancelled: () => boolean;
  /** Overlap: started ahead of its model; re-base onto it when it comes. */
  rebase?: Rebase;
  /** Return the end weights too. */
  keepEnd?: boolean;
}

/** Runs the inner steps; yields to the event loop between micro-batches so cancels and models get through. */
export async function runLocalSteps(run: LocalStepsRun): Promise<LocalStepsResult | null> {
  const { prepared, start, indices, steps, microBatch, now } = run;
  const { dataset, trainer, spec } = prepared;
  const P = spec.paramCount;
  const weights = Float32Array.from(start);
  const grad = new Float32Array(P);
  const inputSize = dataset.inputShape.reduce((p, d) => p * d, 1);
  const stepBatch = Math.max(1, Math.min(run.stepBatch, indices.length));
  const chunk = Math.min(microBatch, stepBatch);
  const x = new Float32Array(chunk * inputSize);
  const y = new Int32Array(chunk);
  let computeMs = 0;
  let lastYield = now();
  let lossSum = 0;
  let seen = 0;
  // What the pseudo-gradient is taken against: the model, or, until a speculative run is re-based, its start.
  let base = start;
  let rebased = !run.rebase;
  const rebaseOnto = (model: Float32Array) => {
    if (model.length !== P) throw new RangeError(`model has ${model.length} parameters, the run ${P}`);
    for (let i = 0; i < P; i++) weights[i] += model[i] - base[i];
    base = model;
    rebased = true;
  };
  for (let s = 0; s < steps; s++) {
    if (!rebased) {
      const model = run.rebase!.poll();
      if (model) rebaseOnto(model);
    }
    // Steps take consecutive batches of the shard; a shard shorter than H batches wraps around (the coordinator
    // sizes shards H x batchSize, so this only happens at the end of an epoch).
    const from = (s * stepBatch) % indices.length;
    const batch = indices.subarray(from, Math.min(indices.length, from + stepBatch));
    let t = now();
    trainer.setParams(weights);
    grad.fill(0);
    computeMs += now() - t;
    for (let offset = 0; offset < batch.length; offset += chunk) {
      if (run.cancelled()) return null;
      const count = Math.min(chunk, batch.length - offset);
      t = now();
      dataset.fillTrainBatch(batch.subarray(offset, offset + count), x, y);
      lossSum += trainer.accumulateGradient(x, y, count, grad, count / batch.length, microBatch) * count;
      const end = now();
      computeMs += end - t;
      seen += count;
      // Yield to the thread's messages (a cancel, the next model) every YIELD_EVERY_MS of work, not after every
      // micro-batch: on a loaded machine each yield costs about a millisecond, 5-8% of a round of small batches.
      if (end - lastYield >= YIELD_EVERY_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        lastYield = now();
      }
    }
    t = now();
    run.optimizer.step(weights, grad);
    computeMs += now() - t;
  }
  if (!rebased) {
    const model = await run.rebase!.wait();
    if (!model || run.cancelled()) return null;
    rebaseOnto(model);
  }
  const end = run.keepEnd ? Float32Array.from(weights) : undefined;
  for (let i = 0; i < P; i++) weights[i] = base[i] - weights[i];
  return { pseudoGradient: weights, loss: seen > 0 ? lossSum / seen : Number.NaN, computeMs, ...(end ? { end } : {}) };
}

/**
 * Encodes updates with the codec each assignment names, keeping one error-feedback residual (and the scratch
 * arrays top-k needs) per session: what a lossy codec drops from one update is sent with the next.
 */
export class UpdateEncoder {
  private state: { sessionId: number; feedback: ErrorFeedback; decoded: Float32Array; scratch: Float32Array } | null = null;
  private inner: { sessionId: number; optimizer: InnerOptimizerState } | null = null;

  encode(a: Assignment, fields: FrameFields, values: Float32Array): Uint8Array {
    const codec = a.codec ? CODEC_BY_NAME[a.codec] : FrameCodec.Float32;
    const state = this.stateFor(a.sessionId, values.length);
    return encodeCodedFrame(fields, values, codec, { feedback: state.feedback, decoded: state.decoded, scratch: state.scratch, topKFraction: a.topKFraction });
  }

  /**
   * The values the coordinator decodes from the frame encode() just made of `values`: the decoded payload for a
   * lossy codec, else `values` (float32 sends them as they are, a residual added in place).
   */
  sent(a: Assignment, values: Float32Array): Float32Array {
    const lossy = a.codec !== undefined && a.codec !== 'float32';
    return lossy && this.state?.sessionId === a.sessionId ? this.state.decoded : values;
  }

  /** Whether the next update would carry a residual (a lossy codec ran for this session). */
  hasResidual(sessionId: number): boolean {
    return this.state?.sessionId === sessionId && this.state.feedback.residual.some((v) => v !== 0);
  }

  /** The inner optimizer for this session and setting: kept across rounds, new when either changes. */
  optimizerFor(sessionId: number, config: InnerOptimizer, paramCount: number): InnerOptimizerState {
    if (!this.inner || this.inner.sessionId !== sessionId || !this.inner.optimizer.matches(config, paramCount)) {
      this.inner = { sessionId, optimizer: new InnerOptimizerState(config, paramCount) };
    }
    return this.inner.optimizer;
  }

  private stateFor(sessionId: number, paramCount: number) {
    if (!this.state || this.state.sessionId !== sessionId || this.state.feedback.residual.length !== paramCount) {
      this.state = { sessionId, feedback: new ErrorFeedback(paramCount), decoded: new Float32Array(paramCount), scratch: new Float32Array(paramCount) };
    }
    return this.state;
  }
}
