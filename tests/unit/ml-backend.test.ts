import { afterEach, describe, expect, it } from 'vitest';

import { describeBackend, loadTf } from '../../src/ml/backend';

afterEach(() => {
  delete process.env.HYPERGPU_BACKEND;
});

describe('loadTf', () => {
  it('picks the fastest backend that starts and logs why', async () => {
    const lines: string[] = [];
    const { tf, info } = await loadTf({ log: (l) => lines.push(l) });
    expect(['tensorflow-gpu', 'tensorflow', 'wasm']).toContain(info.name);
    expect(tf.getBackend()).toBe(info.name === 'wasm' ? 'wasm' : 'tensorflow');
    expect(lines).toEqual([describeBackend(info)]);
    expect(lines[0]).toMatch(new RegExp(`^backend ${info.name} \\(.+\\): .+`));
    if (info.name === 'wasm') {
      // On this project's CI machines the native packages are absent; the reason must say so.
      expect(info.tried.map((t) => t.name)).toEqual(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']);
      expect(info.reason).toContain('@tensorflow/tfjs-node');
      expect(info.device).toMatch(/SIMD|thread/);
      expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeTruthy();
    }
    // Works: a tiny computation on the chosen backend.
    expect(Array.from(tf.add(tf.tensor1d([1, 2]), 1).dataSync())).toEqual([2, 3]);
  });

  it('caches the load for the same preference', async () => {
    expect(await loadTf()).toBe(await loadTf());
  });

  it('honours HYPERGPU_BACKEND, and rejects unknown names', async () => {
    process.env.HYPERGPU_BACKEND = 'gpu-please';
    await expect(loadTf()).rejects.toThrow(/HYPERGPU_BACKEND=gpu-please is not a backend; use one of tensorflow-gpu, tensorflow, wasm, cpu/);
    process.env.HYPERGPU_BACKEND = 'cpu';
    const { tf, info } = await loadTf();
    expect(info).toMatchObject({ name: 'cpu', reason: 'forced by HYPERGPU_BACKEND=cpu', tried: [] });
    expect(tf.getBackend()).toBe('cpu');
    process.env.HYPERGPU_BACKEND = 'wasm';
    expect((await loadTf()).info.name).toBe('wasm');
  });
});

describe('process error handling', () => {
  it('leaves no rethrowing uncaughtException / unhandledRejection listeners behind (Emscripten adds them)', async () => {
    await loadTf({ prefer: 'wasm' });
    for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
      for (const listener of (process.listeners as (name: string) => Array<() => void>)(event)) {
        expect(listener.toString()).not.toMatch(/ExitStatus|throw reason/);
      }
    }
  });
});
