import { beforeAll, describe, expect, it } from 'vitest';

import { loadTf, type Tf } from '../../src/ml/backend';
import { loadDataset, type Dataset } from '../../src/ml/datasets';
import { initialParams, modelSpec, type ModelSpec } from '../../src/ml/models';
import { Trainer } from '../../src/ml/trainer';

let tf: Tf;
let mnist: Dataset;
beforeAll(async () => {
  [{ tf }, mnist] = await Promise.all([loadTf({ prefer: 'wasm' }), loadDataset('mnist')]);
});

function batch(ds: Dataset, indices: number[]): { x: Float32Array; y: Int32Array } {
  const x = new Float32Array(indices.length * 784);
  const y = new Int32Array(indices.length);
  ds.fillTrainBatch(indices, x, y);
  return { x, y };
}

function range(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}

/** Deterministic shuffled order of the training set (plain LCG). */
function permutation(n: number, seed: number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  let s = seed >>> 0;
  for (let i = n - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** Central finite differences on the coordinates with the largest analytic gradient. */
function checkGradient(spec: ModelSpec, paramsToCheck: string[], samples: number): void {
  const trainer = new Trainer(tf, spec);
  const params = initialParams(spec, 5);
  // Biases at least 0.02 from zero: blank MNIST pixels make a conv's pre-activation equal its bias, and
  // a bias within eps of zero would put the finite difference across a ReLU kink.
  for (const p of spec.params) {
    if (p.shape.length === 1) for (let j = 0; j < p.size; j++) params[p.offset + j] = 0.05 * ((j % 5) - 2) + 0.03;
  }
  const { x, y } = batch(mnist, range(100, samples));
  trainer.setParams(params);
  const { gradient, loss } = trainer.computeGradient(x, y, samples);
  expect(trainer.evaluate(params, x, y, samples).loss).toBeCloseTo(loss, 4);

  const eps = 2e-3;
  for (const name of paramsToCheck) {
    const p = spec.params.find((q) => q.name === name)!;
    const coords = Array.from({ length: p.size }, (_, j) => p.offset + j)
      .sort((a, b) => Math.abs(gradient[b]) - Math.abs(gradient[a]))
      .slice(0, 4);
    for (const i of coords) {
      const original = params[i];
      params[i] = original + eps;
      const up = trainer.evaluate(params, x, y, samples).loss;
      params[i] = original - eps;
      const down = trainer.evaluate(params, x, y, samples).loss;
      params[i] = original;
      const numeric = (up - down) / (2 * eps);
      expect(Math.abs(numeric - gradient[i]), `${name}[${i - p.offset}]`).toBeLessThan(2e-3 + 0.03 * Math.abs(gradient[i]));
    }
  }
  trainer.dispose();
}

/** Plain SGD in the test (the coordinator owns the real optimizer). Returns the trained params. */
function trainSgd(spec: ModelSpec, steps: number, batchSize: number, lr: number, losses: number[] = []): Float32Array {
  const trainer = new Trainer(tf, spec);
  const params = initialParams(spec, 1);
  const order = permutation(mnist.trainSize, 99);
  const x = new Float32Array(batchSize * 784);
  const y = new Int32Array(batchSize);
  for (let step = 0; step < steps; step++) {
    mnist.fillTrainBatch(order.subarray(step * batchSize, (step + 1) * batchSize), x, y);
    trainer.setParams(params);
    const { gradient, loss } = trainer.computeGradient(x, y, batchSize);
    losses.push(loss);
    for (let i = 0; i < params.length; i++) params[i] -= lr * gradient[i];
  }
  trainer.dispose();
  return params;
}

describe('Trainer', () => {
  it('computes the MLP gradient (finite differences)', () => {
    checkGradient(modelSpec('mlp'), ['dense1/kernel', 'dense1/bias', 'dense2/kernel', 'dense3/kernel', 'dense3/bias'], 8);
  });

  it('computes the CNN gradient through the wasm conv kernels (finite differences)', () => {
    checkGradient(modelSpec('cnn'), ['conv1/kernel', 'conv1/bias', 'conv2/kernel', 'dense/kernel'], 8);
  });

  it('averages micro-batches into the full-batch gradient', () => {
    const spec = modelSpec('mlp');
    const trainer = new Trainer(tf, spec);
    trainer.setParams(initialParams(spec, 2));
    const { x, y } = batch(mnist, range(0, 40));
    const whole = trainer.computeGradient(x, y, 40, 128);
    const pieces = trainer.computeGradient(x, y, 40, 16);
    expect(pieces.loss).toBeCloseTo(whole.loss, 5);
    let worst = 0;
    for (let i = 0; i < whole.gradient.length; i++) worst = Math.max(worst, Math.abs(whole.gradient[i] - pieces.gradient[i]));
    expect(worst).toBeLessThan(1e-5);
    trainer.dispose();
  });

  it('computes the same gradient asynchronously, yielding between micro-batches', async () => {
    const spec = modelSpec('cnn');
    const trainer = new Trainer(tf, spec);
    trainer.setParams(initialParams(spec, 2));
    const { x, y } = batch(mnist, range(0, 40));
    const sync = trainer.computeGradient(x, y, 40, 16);
    let ticks = 0;
    const ticker = setImmediate(function tick() {
      ticks++;
    });
    const async = await trainer.computeGradientAsync(x, y, 40, 16);
    clearImmediate(ticker);
    expect(async.loss).toBe(sync.loss);
    expect(async.gradient).toEqual(sync.gradient);
    expect(ticks).toBe(1);
    trainer.dispose();
  });

  it('accumulates weighted gradients into a caller-owned array exactly as summing computeGradient results', () => {
    const spec = modelSpec('mlp');
    const trainer = new Trainer(tf, spec);
    trainer.setParams(initialParams(spec, 4));
    const first = batch(mnist, range(0, 24));
    const second = batch(mnist, range(24, 8));
    // The agent's old path: one array per micro-batch from computeGradient, then its own weighted sum.
    const expected = new Float32Array(spec.paramCount);
    const a = trainer.computeGradient(first.x, first.y, 24);
    const b = trainer.computeGradient(second.x, second.y, 8);
    for (let i = 0; i < expected.length; i++) expected[i] += a.gradient[i] * 0.75;
    for (let i = 0; i < expected.length; i++) expected[i] += b.gradient[i] * 0.25;
    // The new one: straight into the target (in the agent, the outgoing frame's body).
    const into = new Float32Array(spec.paramCount);
    expect(trainer.accumulateGradient(first.x, first.y, 24, into, 0.75)).toBe(a.loss);
    expect(trainer.accumulateGradient(second.x, second.y, 8, into, 0.25)).toBe(b.loss);
    expect(into).toEqual(expected);
    expect(() => trainer.accumulateGradient(first.x, first.y, 24, new Float32Array(10))).toThrow(/target holds 10 values/);
    expect(() => trainer.accumulateGradient(first.x, first.y, 24, into, Number.NaN)).toThrow(/weight must be finite/);
    trainer.dispose();
  });

  it('does not leak tensors across 20 calls', () => {
    for (const name of ['mlp', 'cnn'] as const) {
      const spec = modelSpec(name);
      const trainer = new Trainer(tf, spec);
      const params = initialParams(spec, 3);
      const { x, y } = batch(mnist, range(0, 32));
      trainer.setParams(params);
      trainer.computeGradient(x, y, 32, 8);
      trainer.evaluate(params, x, y, 32, 10);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 20; i++) {
        trainer.setParams(params);
        trainer.computeGradient(x, y, 32, 8);
        trainer.evaluate(params, x, y, 32, 10);
      }
      expect(tf.memory().numTensors).toBe(before);
      trainer.dispose();
    }
  });

  it('rejects bad input with clear errors', () => {
    const spec = modelSpec('mlp');
    const trainer = new Trainer(tf, spec);
    const { x, y } = batch(mnist, range(0, 4));
    expect(() => trainer.computeGradient(x, y, 4)).toThrow(/call setParams/);
    expect(() => trainer.setParams(new Float32Array(3))).toThrow(/109386 params/);
    trainer.setParams(initialParams(spec, 1));
    expect(() => trainer.computeGradient(x, y, 5)).toThrow(/5 samples of 784 need 3920/);
    expect(() => trainer.computeGradient(x, Int32Array.from([0, 1, 10, 2]), 4)).toThrow(/label 10 at sample 2/);
    expect(() => trainer.computeGradient(x, y, 0)).toThrow(/at least one sample/);
    trainer.dispose();
  });

  it('trains the MLP on MNIST with plain SGD to > 85% test accuracy', () => {
    const spec = modelSpec('mlp');
    const test = mnist.testSet();
    const evaluator = new Trainer(tf, spec);
    const before = evaluator.evaluate(initialParams(spec, 1), test.x, test.labels, test.count);
    expect(before.accuracy).toBeGreaterThan(0.03);
    expect(before.accuracy).toBeLessThan(0.2);
    const params = trainSgd(spec, 300, 64, 0.1);
    const after = evaluator.evaluate(params, test.x, test.labels, test.count);
    expect(after.accuracy).toBeGreaterThan(0.85);
    expect(after.loss).toBeLessThan(before.loss / 3);
    evaluator.dispose();
  });

  it('trains the CNN on wasm: loss drops over 30 steps', () => {
    const spec = modelSpec('cnn');
    const losses: number[] = [];
    const params = trainSgd(spec, 30, 64, 0.1, losses);
    const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(mean(losses.slice(-5))).toBeLessThan(mean(losses.slice(0, 5)) * 0.8);
    const test = mnist.testSet();
    const evaluator = new Trainer(tf, spec);
    const before = evaluator.evaluate(initialParams(spec, 1), test.x, test.labels, 2000);
    const after = evaluator.evaluate(params, test.x, test.labels, 2000);
    expect(after.loss).toBeLessThan(before.loss);
    expect(after.accuracy).toBeGreaterThan(before.accuracy + 0.1);
    evaluator.dispose();
  });

  it('benchmarks itself', () => {
    const trainer = new Trainer(tf, modelSpec('mlp'));
    const rate = trainer.benchmark(mnist, 256);
    expect(rate).toBeGreaterThan(100);
    trainer.dispose();
  });
});
