// Gradient computation and evaluation of one model on one tfjs backend. Stateless apart from the current
// parameter tensors: the coordinator owns the optimizer and sends parameters, nodes send gradients back.

import type { Tf } from './backend';
import type { Dataset } from './datasets';
import { crossEntropy, forward, initialParams, meanLoss, paramTensors, type ModelSpec } from './models';

type Tensor = import('@tensorflow/tfjs-core').Tensor;
type Tensor1D = import('@tensorflow/tfjs-core').Tensor1D;
type Scalar = import('@tensorflow/tfjs-core').Scalar;

export interface GradientResult {
  /** Mean gradient of the mean cross-entropy over the samples, in the model's flat layout. */
  gradient: Float32Array;
  /** Mean cross-entropy over the samples (before the update). */
  loss: number;
}

export interface EvaluationResult {
  loss: number;
  accuracy: number;
}

export class Trainer {
  private params: Tensor[] | null = null;
  private readonly sampleSize: number;

  constructor(
    private readonly tf: Tf,
    readonly spec: ModelSpec,
  ) {
    this.sampleSize = spec.inputShape.reduce((a, b) => a * b, 1);
  }

  /** Replaces the current parameters (copied into backend memory; the array may be reused after). */
  setParams(flat: Float32Array): void {
    const next = paramTensors(this.tf, this.spec, flat);
    this.disposeParams();
    this.params = next;
  }

  /**
   * Mean gradient of the mean cross-entropy over `count` samples, computed in micro-batches of at most
   * `microBatch` (bounds memory; the result does not depend on it beyond float rounding).
   * x holds count x pixels floats in [0, 1], y the labels. Synchronous: blocks for count / (samples/s).
   */
  computeGradient(x: Float32Array, y: Int32Array, count: number, microBatch = 128): GradientResult {
    const run = this.startGradient(x, y, count, microBatch);
    for (let start = 0; start < count; start += microBatch) run.step(start);
    return run.result();
  }

  /**
   * Adds `weight` times the mean gradient over `count` samples into `into` (the model's flat layout) and
   * returns the mean loss. The agent passes the outgoing frame's body, so a round's gradient is summed where
   * it will be sent from, without an array of its own. `into` must hold paramCount values.
   */
  accumulateGradient(x: Float32Array, y: Int32Array, count: number, into: Float32Array, weight = 1, microBatch = 128): number {
    const run = this.startGradient(x, y, count, microBatch, into, weight);
    for (let start = 0; start < count; start += microBatch) run.step(start);
    return run.result().loss;
  }

  /**
   * Same result as computeGradient, but yields to the event loop between micro-batches so a node agent
   * keeps answering heartbeats and socket traffic during a long shard.
   */
  async computeGradientAsync(x: Float32Array, y: Int32Array, count: number, microBatch = 128): Promise<GradientResult> {
    const run = this.startGradient(x, y, count, microBatch);
    for (let start = 0; start < count; start += microBatch) {
      if (start > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      run.step(start);
    }
    return run.result();
  }

  private startGradient(
    x: Float32Array,
    y: Int32Array,
    count: number,
    microBatch: number,
    gradient: Float32Array = new Float32Array(this.spec.paramCount),
    scale = 1,
  ): { step: (start: number) => void; result: () => GradientResult } {
    const params = this.requireParams();
    this.checkBatch(x, y, count);
    if (count === 0) throw new RangeError('computeGradient needs at least one sample');
    if (!Number.isInteger(microBatch) || microBatch < 1) throw new RangeError(`microBatch must be a positive integer, got ${microBatch}`);
    if (gradient.length !== this.spec.paramCount) {
      throw new RangeError(`gradient target holds ${gradient.length} values; the ${this.spec.name} has ${this.spec.paramCount} parameters`);
    }
    if (!Number.isFinite(scale)) throw new RangeError(`gradient weight must be finite, got ${scale}`);
    const tf = this.tf;
    let loss = 0;
    const step = (start: number): void => {
      const n = Math.min(microBatch, count - start);
      // Each micro-batch's mean is weighted by its share of the samples, so the sum is the overall mean.
      const share = n / count;
      const weight = share * scale;
      const { value, grads } = tf.tidy(() => {
        const xb = this.inputTensor(x, start, n);
        const yb = tf.tensor1d(y.subarray(start, start + n), 'int32');
        const f = (...ps: Tensor[]): Scalar => meanLoss(tf, this.spec, ps, xb, yb);
        const result = tf.valueAndGrads(f)(params);
        return { value: result.value, grads: result.grads };
      });
      try {
        loss += value.dataSync()[0] * share;
        this.spec.params.forEach((p, i) => {
          const g = grads[i].dataSync() as Float32Array;
          const base = p.offset;
          for (let j = 0; j < p.size; j++) gradient[base + j] += g[j] * weight;
        });
      } finally {
        tf.dispose([value, ...grads]);
      }
    };
    return { step, result: () => ({ gradient, loss }) };
  }

  /**
   * Mean cross-entropy and accuracy of `params` on `count` samples. Sets the trainer's parameters.
   * Large batches on purpose: per-op overhead dominates small ones (and wasm's Slice copies its input).
   */
  evaluate(params: Float32Array, x: Float32Array, labels: Int32Array, count: number, batch = 2000): EvaluationResult {
    this.setParams(params);
    const ps = this.requireParams();
    this.checkBatch(x, labels, count);
    const tf = this.tf;
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < count; start += batch) {
      const n = Math.min(batch, count - start);
      const [batchLoss, batchCorrect] = tf.tidy(() => {
        const xb = this.inputTensor(x, start, n);
        const yb = tf.tensor1d(labels.subarray(start, start + n), 'int32');
        const logits = forward(tf, this.spec, ps, xb);
        const lossTotal = tf.sum(crossEntropy(tf, logits, yb as Tensor1D));
        const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), yb), 'float32'));
        // One read for both numbers: each read is a sync point.
        return Array.from(tf.stack([lossTotal, hits]).dataSync());
      });
      lossSum += batchLoss;
      correct += batchCorrect;
    }
    return count === 0 ? { loss: NaN, accuracy: NaN } : { loss: lossSum / count, accuracy: correct / count };
  }

  /**
   * Measured samples/s of computeGradient on this machine (for the node's capability report). Uses the
   * current parameters, or seeded initial ones if none are set; the first train samples; one warm-up
   * micro-batch first, because the first call of each kernel builds its operators.
   */
  benchmark(dataset: Dataset, samples = 512): number {
    const count = Math.max(1, Math.min(samples, dataset.trainSize));
    if (!this.params) this.setParams(initialParams(this.spec, 1));
    const x = new Float32Array(count * this.sampleSize);
    const y = new Int32Array(count);
    dataset.fillTrainBatch(Int32Array.from({ length: count }, (_, i) => i), x, y);
    this.computeGradient(x, y, Math.min(count, 128));
    const started = performance.now();
    this.computeGradient(x, y, count);
    const seconds = (performance.now() - started) / 1000;
    return count / Math.max(seconds, 1e-6);
  }

  dispose(): void {
    this.disposeParams();
  }

  private disposeParams(): void {
    if (this.params) this.tf.dispose(this.params);
    this.params = null;
  }

  private requireParams(): Tensor[] {
    if (!this.params) throw new Error('Trainer: call setParams before computing gradients');
    return this.params;
  }

  private inputTensor(x: Float32Array, start: number, n: number): Tensor {
    const size = this.sampleSize;
    return this.tf.tensor(x.subarray(start * size, (start + n) * size), [n, ...this.spec.inputShape], 'float32');
  }

  private checkBatch(x: Float32Array, y: Int32Array, count: number): void {
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
    if (x.length < count * this.sampleSize) {
      throw new RangeError(`x holds ${x.length} floats; ${count} samples of ${this.sampleSize} need ${count * this.sampleSize}`);
    }
    if (y.length < count) throw new RangeError(`labels hold ${y.length} values; need ${count}`);
    const classes = this.spec.numClasses;
    for (let i = 0; i < count; i++) {
      const label = y[i];
      // An out-of-range label would one-hot to all zeros and silently train on garbage.
      if (label < 0 || label >= classes) throw new RangeError(`label ${label} at sample ${i} outside [0, ${classes})`);
    }
  }
}
