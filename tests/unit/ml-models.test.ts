import { describe, expect, it } from 'vitest';

import { loadTf } from '../../src/ml/backend';
import {
  assertDatasetFitsModel,
  initialParams,
  isModelName,
  joinParams,
  MODEL_NAMES,
  modelSpec,
  paramTensors,
  splitParams,
} from '../../src/ml/models';

describe('modelSpec', () => {
  it('lays the params out contiguously', () => {
    for (const name of MODEL_NAMES) {
      const spec = modelSpec(name);
      expect(spec.inputShape).toEqual([28, 28, 1]);
      expect(spec.numClasses).toBe(10);
      let offset = 0;
      for (const p of spec.params) {
        expect(p.offset).toBe(offset);
        expect(p.size).toBe(p.shape.reduce((a, b) => a * b, 1));
        offset += p.size;
      }
      expect(spec.paramCount).toBe(offset);
    }
  });

  it('has the documented sizes', () => {
    // 784*128+128 + 128*64+64 + 64*10+10
    expect(modelSpec('mlp').paramCount).toBe(109_386);
    // 3*3*1*8+8 + 3*3*8*16+16 + 784*10+10
    expect(modelSpec('cnn').paramCount).toBe(9_098);
    expect(modelSpec('cnn').params.map((p) => p.shape)).toEqual([[3, 3, 1, 8], [8], [3, 3, 8, 16], [16], [784, 10], [10]]);
    // The FedAvg paper's 2NN: 784*200+200 + 200*200+200 + 200*10+10
    expect(modelSpec('mlp2nn').paramCount).toBe(199_210);
    expect(modelSpec('mlp2nn').params.map((p) => p.shape)).toEqual([[784, 200], [200], [200, 200], [200], [200, 10], [10]]);
  });

  it('validates model names', () => {
    expect(isModelName('mlp')).toBe(true);
    expect(isModelName('resnet')).toBe(false);
    expect(() => modelSpec('resnet' as never)).toThrow(/unknown model 'resnet'/);
  });
});

describe('initialParams', () => {
  it('is deterministic per seed and differs across seeds', () => {
    for (const name of MODEL_NAMES) {
      const spec = modelSpec(name);
      const a = initialParams(spec, 7);
      expect(a.length).toBe(spec.paramCount);
      expect(initialParams(spec, 7)).toEqual(a);
      const b = initialParams(spec, 8);
      let same = 0;
      for (let i = 0; i < a.length; i++) if (a[i] === b[i] && a[i] !== 0) same++;
      expect(same).toBe(0);
      expect(initialParams(spec, -3)).not.toEqual(initialParams(spec, 2 ** 32 - 3));
    }
  });

  it('zeroes biases and scales weights by fan-in (He) or fan-in + fan-out (Glorot)', () => {
    const spec = modelSpec('mlp');
    const flat = initialParams(spec, 1);
    const [w1, b1, , , w3] = splitParams(spec, flat);
    expect(b1.every((v) => v === 0)).toBe(true);
    const limit1 = Math.sqrt(6 / 784);
    expect(Math.max(...w1.map(Math.abs))).toBeLessThanOrEqual(limit1);
    expect(Math.max(...w1.map(Math.abs))).toBeGreaterThan(limit1 * 0.99);
    const mean = w1.reduce((a, b) => a + b, 0) / w1.length;
    expect(Math.abs(mean)).toBeLessThan(limit1 * 0.01);
    expect(Math.max(...w3.map(Math.abs))).toBeLessThanOrEqual(Math.sqrt(6 / 74));
  });

  it('rejects non-finite seeds', () => {
    expect(() => initialParams(modelSpec('mlp'), Number.NaN)).toThrow(/finite/);
  });
});

describe('flat layout', () => {
  it('round-trips through views and tensors exactly', async () => {
    const { tf } = await loadTf();
    for (const name of MODEL_NAMES) {
      const spec = modelSpec(name);
      const flat = initialParams(spec, 11);
      const parts = splitParams(spec, flat);
      expect(joinParams(spec, parts)).toEqual(flat);
      const tensors = paramTensors(tf, spec, flat);
      tensors.forEach((t, i) => expect(t.shape).toEqual(spec.params[i].shape));
      const back = joinParams(spec, tensors.map((t) => t.dataSync() as Float32Array));
      expect(back).toEqual(flat);
      tf.dispose(tensors);
    }
  });

  it('rejects vectors of the wrong length', () => {
    expect(() => splitParams(modelSpec('cnn'), new Float32Array(10))).toThrow(/has 9098 params, got a vector of 10/);
  });
});

describe('assertDatasetFitsModel', () => {
  it('accepts MNIST-shaped data and explains mismatches', () => {
    const spec = modelSpec('cnn');
    expect(() => assertDatasetFitsModel(spec, { id: 'mnist', inputShape: [28, 28, 1], numClasses: 10 })).not.toThrow();
    expect(() => assertDatasetFitsModel(spec, { id: 'd', inputShape: [32, 32, 3], numClasses: 10 })).toThrow(
      /dataset d has 32x32x3 samples but model cnn takes 28x28x1/,
    );
    expect(() => assertDatasetFitsModel(spec, { id: 'd', inputShape: [28, 28, 1], numClasses: 26 })).toThrow(
      /26 classes but model cnn predicts 10/,
    );
  });
});
