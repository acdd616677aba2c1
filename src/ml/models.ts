// The models, defined once for the node agent (training) and the coordinator (initialisation,
// evaluation). Parameters travel as one flat Float32Array: the params below, in order, each in
// row-major order of its shape (dense weights [in, out], conv filters [kh, kw, in, out]).
//
// The forward pass is written with plain tf ops over tensors cut from that vector rather than with
// tf.layers, so the flat <-> tensor mapping is exact and there is no hidden variable state.
//
// This module imports tfjs types only: the coordinator can call modelSpec and initialParams without
// loading tfjs.

import type { ModelName } from '../server/core/types';
import type { Tf } from './backend';

type Tensor = import('@tensorflow/tfjs-core').Tensor;
type Tensor1D = import('@tensorflow/tfjs-core').Tensor1D;
type Tensor2D = import('@tensorflow/tfjs-core').Tensor2D;
type Tensor4D = import('@tensorflow/tfjs-core').Tensor4D;
type Scalar = import('@tensorflow/tfjs-core').Scalar;

export interface ParamSpec {
  name: string;
  shape: number[];
  /** Index of the first value in the flat vector. */
  offset: number;
  size: number;
}

export interface ModelSpec {
  name: ModelName;
  /** One sample: [height, width, channels]. */
  inputShape: number[];
  numClasses: number;
  params: ParamSpec[];
  paramCount: number;
}

export const MODEL_NAMES: readonly ModelName[] = ['mlp', 'cnn', 'mlp2nn'];

const INPUT_SHAPE = [28, 28, 1];
const NUM_CLASSES = 10;

/** How a weight is initialised: He for layers followed by ReLU, Glorot for the logits layer. */
type Init = 'he' | 'glorot' | 'zeros';

interface ParamDef {
  name: string;
  shape: number[];
  init: Init;
}

const DEFS: Record<ModelName, ParamDef[]> = {
  // 784-128-64-10, ReLU. 109,386 params.
  mlp: [
    { name: 'dense1/kernel', shape: [784, 128], init: 'he' },
    { name: 'dense1/bias', shape: [128], init: 'zeros' },
    { name: 'dense2/kernel', shape: [128, 64], init: 'he' },
    { name: 'dense2/bias', shape: [64], init: 'zeros' },
    { name: 'dense3/kernel', shape: [64, 10], init: 'glorot' },
    { name: 'dense3/bias', shape: [10], init: 'zeros' },
  ],
  // conv3x3x8 'same' -> relu -> maxpool2 -> conv3x3x16 'same' -> relu -> maxpool2 -> dense 10.
  // 9,098 params; small on purpose so one wasm core trains it at well over 500 samples/s.
  cnn: [
    { name: 'conv1/kernel', shape: [3, 3, 1, 8], init: 'he' },
    { name: 'conv1/bias', shape: [8], init: 'zeros' },
    { name: 'conv2/kernel', shape: [3, 3, 8, 16], init: 'he' },
    { name: 'conv2/bias', shape: [16], init: 'zeros' },
    { name: 'dense/kernel', shape: [7 * 7 * 16, 10], init: 'glorot' },
    { name: 'dense/bias', shape: [10], init: 'zeros' },
  ],
  // The FedAvg paper's MNIST "2NN" (McMahan et al. 2017): 784-200-200-10, ReLU. 199,210 params. Same layer
  // names and forward pass as mlp, only wider: the paper's rounds-to-97% figures are quoted for this model.
  mlp2nn: [
    { name: 'dense1/kernel', shape: [784, 200], init: 'he' },
    { name: 'dense1/bias', shape: [200], init: 'zeros' },
    { name: 'dense2/kernel', shape: [200, 200], init: 'he' },
    { name: 'dense2/bias', shape: [200], init: 'zeros' },
    { name: 'dense3/kernel', shape: [200, 10], init: 'glorot' },
    { name: 'dense3/bias', shape: [10], init: 'zeros' },
  ],
};

const specs = new Map<ModelName, ModelSpec>();

export function isModelName(value: string): value is ModelName {
  return (MODEL_NAMES as readonly string[]).includes(value);
}

export function modelSpec(name: ModelName): ModelSpec {
  const cached = specs.get(name);
  if (cached) return cached;
  const defs = DEFS[name];
  if (!defs) throw new Error(`unknown model '${name}': use one of ${MODEL_NAMES.join(', ')}`);
  let offset = 0;
  const params = defs.map((def) => {
    const size = def.shape.reduce((a, b) => a * b, 1);
    const param: ParamSpec = { name: def.name, shape: [...def.shape], offset, size };
    offset += size;
    return param;
  });
  const spec: ModelSpec = { name, inputShape: [...INPUT_SHAPE], numClasses: NUM_CLASSES, params, paramCount: offset };
  specs.set(name, spec);
  return spec;
}

/** Deterministic 32-bit PRNG (mulberry32): same seed, same weights, on every machine. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes any finite seed (negative, fractional, > 2^32) into 32 bits, so nearby seeds differ. */
function seedBits(seed: number): number {
  if (!Number.isFinite(seed)) throw new Error(`seed must be a finite number, got ${seed}`);
  const lo = Math.floor(seed) >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  let h = Math.imul(lo ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(hi + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Fan-in and fan-out of a dense kernel [in, out] or conv filter [kh, kw, in, out]. */
function fans(shape: number[]): [number, number] {
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return [shape[shape.length - 2] * receptive, shape[shape.length - 1] * receptive];
}

/** Seeded initial weights (uniform He or Glorot), zero biases; pure JavaScript, no tfjs needed. */
export function initialParams(spec: ModelSpec, seed: number): Float32Array {
  const defs = DEFS[spec.name];
  const flat = new Float32Array(spec.paramCount);
  const random = mulberry32(seedBits(seed));
  spec.params.forEach((param, i) => {
    const init = defs[i].init;
    if (init === 'zeros') return;
    const [fanIn, fanOut] = fans(param.shape);
    const limit = init === 'he' ? Math.sqrt(6 / fanIn) : Math.sqrt(6 / (fanIn + fanOut));
    for (let j = 0; j < param.size; j++) flat[param.offset + j] = (random() * 2 - 1) * limit;
  });
  return flat;
}

/** Views of the flat vector, one per param (no copy). */
export function splitParams(spec: ModelSpec, flat: Float32Array): Float32Array[] {
  if (flat.length !== spec.paramCount) {
    throw new Error(`model ${spec.name} has ${spec.paramCount} params, got a vector of ${flat.length}`);
  }
  return spec.params.map((p) => flat.subarray(p.offset, p.offset + p.size));
}

/** Concatenates per-param arrays back into the flat layout. */
export function joinParams(spec: ModelSpec, parts: ArrayLike<number>[]): Float32Array {
  if (parts.length !== spec.params.length) {
    throw new Error(`model ${spec.name} has ${spec.params.length} param tensors, got ${parts.length}`);
  }
  const flat = new Float32Array(spec.paramCount);
  spec.params.forEach((p, i) => {
    if (parts[i].length !== p.size) throw new Error(`${p.name}: expected ${p.size} values, got ${parts[i].length}`);
    flat.set(parts[i], p.offset);
  });
  return flat;
}

/** Tensors for each param, in spec order. The caller owns (and disposes) them. */
export function paramTensors(tf: Tf, spec: ModelSpec, flat: Float32Array): Tensor[] {
  return splitParams(spec, flat).map((values, i) => tf.tensor(values, spec.params[i].shape, 'float32'));
}

/** Logits [batch, numClasses] for x [batch, ...inputShape]. */
export function forward(tf: Tf, spec: ModelSpec, params: Tensor[], x: Tensor): Tensor2D {
  const batch = x.shape[0];
  switch (spec.name) {
    case 'mlp':
    case 'mlp2nn': {
      const [w1, b1, w2, b2, w3, b3] = params as [Tensor2D, Tensor1D, Tensor2D, Tensor1D, Tensor2D, Tensor1D];
      const flatX = tf.reshape(x, [batch, w1.shape[0]]) as Tensor2D;
      const h1 = tf.fused.matMul({ a: flatX, b: w1, bias: b1, activation: 'relu' });
      const h2 = tf.fused.matMul({ a: h1, b: w2, bias: b2, activation: 'relu' });
      return tf.fused.matMul({ a: h2, b: w3, bias: b3 }) as Tensor2D;
    }
    case 'cnn': {
      const [k1, c1, k2, c2, w3, b3] = params as [Tensor4D, Tensor1D, Tensor4D, Tensor1D, Tensor2D, Tensor1D];
      const [height, width, channels] = spec.inputShape;
      const image = tf.reshape(x, [batch, height, width, channels]) as Tensor4D;
      const a1 = tf.fused.conv2d({ x: image, filter: k1, strides: 1, pad: 'same', bias: c1, activation: 'relu' });
      const p1 = tf.maxPool(a1, 2, 2, 'valid');
      const a2 = tf.fused.conv2d({ x: p1, filter: k2, strides: 1, pad: 'same', bias: c2, activation: 'relu' });
      const p2 = tf.maxPool(a2, 2, 2, 'valid');
      const flat = tf.reshape(p2, [batch, w3.shape[0]]) as Tensor2D;
      return tf.fused.matMul({ a: flat, b: w3, bias: b3 }) as Tensor2D;
    }
  }
}

/** Per-sample softmax cross-entropy [batch] of logits against integer labels. */
export function crossEntropy(tf: Tf, logits: Tensor2D, labels: Tensor1D): Tensor1D {
  const numClasses = logits.shape[1];
  const oneHot = tf.oneHot(labels, numClasses);
  // log-sum-exp minus the true class's logit: stable, and its gradient is softmax - oneHot.
  return tf.sub(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, oneHot), 1)) as Tensor1D;
}

/** Mean cross-entropy of the model on (x, labels), the training objective. */
export function meanLoss(tf: Tf, spec: ModelSpec, params: Tensor[], x: Tensor, labels: Tensor1D): Scalar {
  return tf.mean(crossEntropy(tf, forward(tf, spec, params, x), labels));
}

/** Throws a message the user can act on when a dataset's samples or classes do not fit the model. */
export function assertDatasetFitsModel(
  spec: ModelSpec,
  dataset: { id: string; inputShape: number[]; numClasses: number },
): void {
  const modelPixels = spec.inputShape.reduce((a, b) => a * b, 1);
  const dataPixels = dataset.inputShape.reduce((a, b) => a * b, 1);
  if (modelPixels !== dataPixels) {
    throw new Error(
      `dataset ${dataset.id} has ${dataset.inputShape.join('x')} samples but model ${spec.name} takes ` +
        `${spec.inputShape.join('x')} (${modelPixels} values)`,
    );
  }
  if (dataset.numClasses > spec.numClasses) {
    throw new Error(
      `dataset ${dataset.id} has ${dataset.numClasses} classes but model ${spec.name} predicts ${spec.numClasses}`,
    );
  }
}
