// The exported TensorFlow.js layers files compute what the coordinator's own forward pass computes: loaded with
// tf.loadLayersModel, the layers model's class probabilities are the softmax of models.ts's logits, for both
// models, with random (seeded) weights, so a wrong layer order, weight name or kernel layout fails here.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportLayersModel } from '../../src/ml/layers-export';
import { forward, initialParams, MODEL_NAMES, modelSpec, paramTensors } from '../../src/ml/models';
import type { Tf } from '../../src/ml/backend';
import { rng as seededRandom } from '../support/random';

beforeAll(async () => {
  tf.enableProdMode();
  await tf.setBackend('cpu');
});

describe('exportLayersModel', () => {
  for (const name of MODEL_NAMES) {
    it(`${name}: tf.loadLayersModel predicts the softmax of our forward pass`, async () => {
      const spec = modelSpec(name);
      const params = initialParams(spec, 7);
      // Non-zero biases too, so a bias in the wrong place shows.
      const random = seededRandom(3);
      for (const p of spec.params) if (p.name.endsWith('bias')) for (let i = 0; i < p.size; i++) params[p.offset + i] = random() - 0.5;
      const files = exportLayersModel(spec, params, { weightsPath: 'weights.bin', metadata: { round: 5 } });
      expect(files.weights.byteLength).toBe(spec.paramCount * 4);
      const manifest = files.modelJson.weightsManifest as { paths: string[]; weights: { name: string }[] }[];
      const model = await tf.loadLayersModel(
        tf.io.fromMemory({
          modelTopology: files.modelJson.modelTopology as object,
          weightSpecs: manifest[0].weights as tf.io.WeightsManifestEntry[],
          weightData: files.weights.buffer.slice(files.weights.byteOffset, files.weights.byteOffset + files.weights.byteLength) as ArrayBuffer,
        }),
      );
      const x = tf.tensor(Float32Array.from({ length: 8 * 784 }, () => random()), [8, 28, 28, 1]);
      const fromLayers = (model.predict(x) as tf.Tensor).arraySync() as number[][];
      const tensors = paramTensors(tf as unknown as Tf, spec, params);
      const ours = tf.softmax(forward(tf as unknown as Tf, spec, tensors, x)).arraySync() as number[][];
      for (let i = 0; i < 8; i++) for (let c = 0; c < 10; c++) expect(fromLayers[i][c]).toBeCloseTo(ours[i][c], 5);
      tf.dispose([x, ...tensors]);
      model.dispose();
    });
  }

  it('refuses a vector of the wrong size', () => {
    expect(() => exportLayersModel(modelSpec('mlp'), new Float32Array(3), { weightsPath: 'w.bin' })).toThrow(/109386 params, got 3/);
  });
});
