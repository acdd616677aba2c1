// The trained model in TensorFlow.js layers format (model.json + one weights file), so that anyone can load it
// with `tf.loadLayersModel` and predict without HyperGPU. The layers are the ones models.ts's forward pass
// computes, in the same order, with the same weight names ('dense1/kernel' is both our parameter's name and the
// name tfjs-layers gives a Dense layer's kernel), so the weights file is simply the flat parameter vector: no
// reordering, no transposes (dense kernels are [in, out] and conv filters [kh, kw, in, out] in both).
// The last layer adds a softmax: the same argmax as our logits, and probabilities are what a user expects.
//
// Pure JavaScript, no tfjs: the coordinator builds these files without loading TensorFlow.js. The shape of the
// topology is what tfjs-layers 4.22 itself writes (model.save); tests/integration/model-download.test.ts loads the
// files with tfjs and checks the accuracy.
import type { ModelSpec } from './models';

type Json = Record<string, unknown>;

const KERAS_VERSION = 'tfjs-layers 4.22.0';
const glorot = { class_name: 'VarianceScaling', config: { scale: 1, mode: 'fan_avg', distribution: 'normal', seed: null } };
const zeros = { class_name: 'Zeros', config: {} };
const noRegularizers = { kernel_regularizer: null, bias_regularizer: null, activity_regularizer: null, kernel_constraint: null, bias_constraint: null };

function dense(name: string, units: number, activation: string): Json {
  return {
    class_name: 'Dense',
    config: { units, activation, use_bias: true, kernel_initializer: glorot, bias_initializer: zeros, ...noRegularizers, name, trainable: true },
  };
}

function conv(name: string, filters: number, input?: number[]): Json {
  return {
    class_name: 'Conv2D',
    config: {
      filters,
      kernel_initializer: glorot,
      kernel_size: [3, 3],
      strides: [1, 1],
      padding: 'same',
      data_format: 'channels_last',
      dilation_rate: [1, 1],
      activation: 'relu',
      use_bias: true,
      bias_initializer: zeros,
      ...noRegularizers,
      name,
      trainable: true,
      ...(input ? { batch_input_shape: [null, ...input], dtype: 'float32' } : {}),
    },
  };
}

function pool(name: string): Json {
  return { class_name: 'MaxPooling2D', config: { pool_size: [2, 2], padding: 'valid', strides: [2, 2], data_format: 'channels_last', name, trainable: true } };
}

function flatten(name: string, input?: number[]): Json {
  return { class_name: 'Flatten', config: { name, trainable: true, ...(input ? { batch_input_shape: [null, ...input], dtype: 'float32' } : {}) } };
}

/** The Keras-style layer list of a model; must compute what models.ts `forward` computes (plus a final softmax). */
function layersOf(spec: ModelSpec): Json[] {
  const units = (name: string) => spec.params.find((p) => p.name === name)!.shape.at(-1)!;
  switch (spec.name) {
    case 'mlp':
    case 'mlp2nn':
      return [
        flatten('flatten', spec.inputShape),
        dense('dense1', units('dense1/kernel'), 'relu'),
        dense('dense2', units('dense2/kernel'), 'relu'),
        dense('dense3', units('dense3/kernel'), 'softmax'),
      ];
    case 'cnn':
      return [
        conv('conv1', units('conv1/kernel'), spec.inputShape),
        pool('pool1'),
        conv('conv2', units('conv2/kernel')),
        pool('pool2'),
        flatten('flatten'),
        dense('dense', units('dense/kernel'), 'softmax'),
      ];
  }
}

export interface LayersModelFiles {
  /** The content of model.json. */
  modelJson: Json;
  /** The content of the weights file model.json names (little-endian float32, the parameters in order). */
  weights: Uint8Array;
}

/**
 * model.json and its weights for a flat parameter vector. `weightsPath` is relative to model.json (tfjs resolves
 * it against model.json's URL or folder); `metadata` lands in userDefinedMetadata (session, round, accuracy).
 */
export function exportLayersModel(spec: ModelSpec, params: Float32Array, options: { weightsPath: string; metadata?: Json }): LayersModelFiles {
  if (params.length !== spec.paramCount) throw new Error(`model ${spec.name} has ${spec.paramCount} params, got ${params.length}`);
  const modelJson: Json = {
    format: 'layers-model',
    generatedBy: 'HyperGPU coordinator',
    convertedBy: null,
    modelTopology: { class_name: 'Sequential', config: { name: `hypergpu-${spec.name}`, layers: layersOf(spec) }, keras_version: KERAS_VERSION, backend: 'tensor_flow.js' },
    weightsManifest: [{ paths: [options.weightsPath], weights: spec.params.map((p) => ({ name: p.name, shape: [...p.shape], dtype: 'float32' })) }],
    ...(options.metadata ? { userDefinedMetadata: options.metadata } : {}),
  };
  // Float32Array is little-endian on every platform Node and browsers run on; a copy so the caller's array stays theirs.
  const weights = new Uint8Array(params.buffer.slice(params.byteOffset, params.byteOffset + params.byteLength));
  return { modelJson, weights };
}
