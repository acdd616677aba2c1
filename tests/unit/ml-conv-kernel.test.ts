// The wasm backend's Conv2DBackpropFilter is ours (src/ml/kernels); check it against the cpu backend's.
import { beforeAll, describe, expect, it } from 'vitest';

import { loadTf, type Tf } from '../../src/ml/backend';

type Tensor = import('@tensorflow/tfjs-core').Tensor;
type Tensor4D = import('@tensorflow/tfjs-core').Tensor4D;

let tf: Tf;
beforeAll(async () => {
  ({ tf } = await loadTf({ prefer: 'wasm' }));
});

function random(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

/** Filter gradient on one backend, through the kernel directly and through tf.grad of conv2d. */
async function filterGrad(
  backend: string,
  xShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  stride: number,
  pad: Pad,
): Promise<{ kernel: Float32Array; viaGrad: Float32Array }> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const x = tf.tensor4d(random(xShape.reduce((a, b) => a * b), 1), xShape);
    const filter = tf.tensor4d(random(filterShape.reduce((a, b) => a * b), 2), filterShape);
    const y = tf.conv2d(x, filter, stride, pad);
    const dy = tf.tensor(random(y.size, 3), y.shape);
    const kernel = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
      strides: [stride, stride],
      pad,
      dataFormat: 'NHWC',
      filterShape,
    }) as Tensor;
    const viaGrad = tf.grad((f: Tensor) => tf.sum(tf.mul(tf.conv2d(x, f as Tensor4D, stride, pad), dy)))(filter);
    return { kernel: kernel.dataSync() as Float32Array, viaGrad: viaGrad.dataSync() as Float32Array };
  });
}

function maxRelError(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
  return worst;
}

const cases: { x: [number, number, number, number]; f: [number, number, number, number]; stride: number; pad: Pad }[] = [
  { x: [4, 7, 7, 2], f: [3, 3, 2, 3], stride: 1, pad: 'same' },
  { x: [3, 8, 6, 1], f: [3, 3, 1, 4], stride: 1, pad: 'valid' },
  { x: [3, 8, 9, 2], f: [3, 3, 2, 4], stride: 2, pad: 'same' },
  { x: [3, 9, 9, 2], f: [2, 2, 2, 3], stride: 2, pad: 'valid' },
  // Stride that leaves trailing rows and columns unused by the forward conv.
  { x: [2, 10, 11, 3], f: [3, 3, 3, 2], stride: 2, pad: 'valid' },
  { x: [2, 6, 6, 2], f: [3, 3, 2, 2], stride: 1, pad: [[0, 0], [1, 2], [0, 1], [0, 0]] },
  // The CNN's layers, on a small batch.
  { x: [4, 28, 28, 1], f: [3, 3, 1, 8], stride: 1, pad: 'same' },
  { x: [4, 14, 14, 8], f: [3, 3, 8, 16], stride: 1, pad: 'same' },
];

describe('wasm Conv2DBackpropFilter', () => {
  it('is registered on wasm', () => {
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeTruthy();
  });

  for (const c of cases) {
    const label = `x ${c.x.join('x')}, filter ${c.f.join('x')}, stride ${c.stride}, pad ${JSON.stringify(c.pad)}`;
    it(`matches the cpu kernel: ${label}`, async () => {
      const reference = await filterGrad('cpu', c.x, c.f, c.stride, c.pad);
      const ours = await filterGrad('wasm', c.x, c.f, c.stride, c.pad);
      expect(maxRelError(ours.kernel, reference.kernel)).toBeLessThan(1e-4);
      expect(maxRelError(ours.viaGrad, reference.viaGrad)).toBeLessThan(1e-4);
    });
  }

  it('leaks no tensors', async () => {
    await tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) await filterGrad('wasm', [2, 8, 8, 2], [3, 3, 2, 2], 1, 'same');
    expect(tf.memory().numTensors).toBe(before);
  });
});
