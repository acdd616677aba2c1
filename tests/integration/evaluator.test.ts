// The Evaluator adapter: a real worker thread running tfjs on the MNIST test set.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadTf } from '../../src/ml/backend';
import { loadDataset } from '../../src/ml/datasets';
import { initialParams, modelSpec } from '../../src/ml/models';
import { Trainer } from '../../src/ml/trainer';
import { createEvaluator, type EvaluatorHandle } from '../../src/server/adapters/workers/evaluator';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hypergpu-evaluator-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A stand-in worker script that says ready and then misbehaves on the first request. */
function fakeWorker(name: string, onEvaluate: string, paramCount = modelSpec('mlp').paramCount): URL {
  const file = path.join(tmp, `${name}.mjs`);
  writeFileSync(
    file,
    `import { parentPort } from 'node:worker_threads';
parentPort.postMessage({ v: 1, type: 'ready', backend: { name: 'cpu', device: 'fake', reason: 'test', tried: [] }, testSize: 1, paramCount: ${paramCount} });
parentPort.on('message', (message) => { ${onEvaluate} });
`,
  );
  return pathToFileURL(file);
}

/** Plain-SGD training in this process, to give the evaluator something better than chance. */
async function trainedMlp(steps: number): Promise<Float32Array> {
  const [{ tf }, mnist] = await Promise.all([loadTf(), loadDataset('mnist')]);
  const spec = modelSpec('mlp');
  const trainer = new Trainer(tf, spec);
  const params = initialParams(spec, 1);
  const x = new Float32Array(64 * 784);
  const y = new Int32Array(64);
  for (let step = 0; step < steps; step++) {
    mnist.fillTrainBatch(Int32Array.from({ length: 64 }, (_, i) => (step * 64 + i * 7919) % mnist.trainSize), x, y);
    trainer.setParams(params);
    const { gradient } = trainer.computeGradient(x, y, 64);
    for (let i = 0; i < params.length; i++) params[i] -= 0.1 * gradient[i];
  }
  trainer.dispose();
  return params;
}

describe('createEvaluator (worker thread)', () => {
  let mlp: EvaluatorHandle;
  const lines: string[] = [];

  beforeAll(async () => {
    mlp = await createEvaluator({ model: 'mlp', dataset: 'mnist', log: (l) => lines.push(l) });
  });
  afterAll(async () => {
    await mlp?.close();
  });

  it('reports the backend it chose', () => {
    expect(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']).toContain(mlp.backend.name);
    expect(lines.some((l) => l.startsWith(`evaluator: backend ${mlp.backend.name}`))).toBe(true);
  });

  it('scores initial params near chance and trained params well above it', async () => {
    const spec = modelSpec('mlp');
    const initial = initialParams(spec, 1);
    const atStart = await mlp.evaluate(initial);
    expect(atStart.samples).toBe(10_000);
    expect(atStart.accuracy).toBeGreaterThan(0.03);
    expect(atStart.accuracy).toBeLessThan(0.2);
    expect(atStart.loss).toBeGreaterThan(2);
    // The caller's array is copied, not transferred away.
    expect(initial.length).toBe(spec.paramCount);

    const trained = await trainedMlp(150);
    const later = await mlp.evaluate(trained);
    expect(later.accuracy).toBeGreaterThan(0.8);
    expect(later.loss).toBeLessThan(atStart.loss / 2);
  });

  it('answers concurrent requests each with its own result', async () => {
    const spec = modelSpec('mlp');
    const [a, b, c] = await Promise.all([1, 2, 1].map((seed) => mlp.evaluate(initialParams(spec, seed))));
    expect(a).toEqual(c);
    expect(a.loss).not.toBe(b.loss);
  });

  it('keeps the event loop free while evaluating', async () => {
    const spec = modelSpec('mlp');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = Date.now();
    await Promise.all([1, 2, 3, 4].map((seed) => mlp.evaluate(initialParams(spec, seed))));
    clearInterval(timer);
    const elapsed = Date.now() - started;
    // A blocked loop would fire next to no ticks; allow for timer coarseness on a busy 2-core box.
    expect(ticks).toBeGreaterThan(elapsed / 5 / 4);
  });

  it('rejects a vector of the wrong length without bothering the worker', async () => {
    await expect(mlp.evaluate(new Float32Array(10))).rejects.toThrow(/model mlp has 109386 params, got 10/);
  });

  // Background work yields the cores (src/ml/thread-priority.ts): the worker thread runs at the nice value asked
  // for; this thread, the event loop, keeps its own.
  // Asked for 3 above this process's own (it only ever lowers a thread's priority; a test run under `nice` starts
  // higher than 0).
  const asked = Math.min(19, os.getPriority(process.pid) + 3);
  it.runIf(process.platform === 'linux' && asked > os.getPriority(process.pid))('runs its thread at the nice value asked for, leaving the event loop at its own', async () => {
    const niceOf = (tid: string) => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')[16]);
    const before = new Set(readdirSync('/proc/self/task'));
    const logged: string[] = [];
    const own = niceOf(String(process.pid));
    const background = await createEvaluator({ model: 'mlp', dataset: 'mnist', niceness: asked, log: (l) => logged.push(l) });
    try {
      await background.evaluate(initialParams(modelSpec('mlp'), 1));
      const started = readdirSync('/proc/self/task').filter((tid) => !before.has(tid));
      const lowered = started.filter((tid) => niceOf(tid) === asked);
      expect(logged.some((l) => l.includes(`running at nice ${asked}`))).toBe(true);
      // The worker thread at least (tfjs's pool threads too when this worker is the first tfjs user of the
      // process, as in the coordinator; here an earlier test already started them on this thread).
      expect(lowered.length).toBeGreaterThanOrEqual(1);
      expect(niceOf(String(process.pid))).toBe(own);
    } finally {
      await background.close();
    }
  });

  it('evaluates the CNN too', async () => {
    const cnn = await createEvaluator({ model: 'cnn', dataset: 'mnist' });
    try {
      const result = await cnn.evaluate(initialParams(modelSpec('cnn'), 1));
      expect(result.samples).toBe(10_000);
      expect(result.accuracy).toBeLessThan(0.25);
    } finally {
      await cnn.close();
    }
  });
});

describe('createEvaluator failures', () => {
  it('fails to start with the worker’s reason for a bad dataset', async () => {
    await expect(createEvaluator({ model: 'mlp', dataset: `folder:${path.join(tmp, 'missing')}` })).rejects.toThrow(
      /evaluator worker failed to start: dataset folder:.*missing is not a folder/,
    );
  });

  it('rejects pending evaluations when the worker crashes, then restarts it', async () => {
    const url = fakeWorker('crash', 'process.exit(3);');
    const lines: string[] = [];
    const evaluator = await createEvaluator({ model: 'mlp', dataset: 'mnist', workerUrl: url, log: (l) => lines.push(l) });
    const params = new Float32Array(modelSpec('mlp').paramCount);
    const results = await Promise.allSettled([evaluator.evaluate(params), evaluator.evaluate(params)]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason.message).toMatch(/evaluator worker crashed: exited with code 3/);
    }
    expect(lines.some((l) => /evaluator worker crashed: exited with code 3; .*the next call starts a new one/.test(l))).toBe(true);
    // The next request starts a fresh worker (this stand-in crashes again, which proves it was asked).
    await expect(evaluator.evaluate(params)).rejects.toThrow(/crashed/);
    await evaluator.close();
  });

  it('rejects when the worker throws', async () => {
    const url = fakeWorker('throw', "throw new Error('boom in worker');");
    const evaluator = await createEvaluator({ model: 'mlp', dataset: 'mnist', workerUrl: url });
    await expect(evaluator.evaluate(new Float32Array(modelSpec('mlp').paramCount))).rejects.toThrow(
      /evaluator worker crashed: boom in worker/,
    );
    await evaluator.close();
  });

  it('times out a stuck evaluation and replaces the worker', async () => {
    const url = fakeWorker('hang', 'for (;;) {}');
    const evaluator = await createEvaluator({ model: 'mlp', dataset: 'mnist', workerUrl: url, timeoutMs: 300 });
    await expect(evaluator.evaluate(new Float32Array(modelSpec('mlp').paramCount))).rejects.toThrow(
      /evaluation timed out after 300 ms/,
    );
    await evaluator.close();
  });

  it('refuses a worker whose model layout differs', async () => {
    const url = fakeWorker('mismatch', '', 123);
    await expect(createEvaluator({ model: 'mlp', dataset: 'mnist', workerUrl: url })).rejects.toThrow(
      /worker's mlp has 123 params, this process's 109386/,
    );
  });

  it('rejects pending and later calls once closed', async () => {
    const url = fakeWorker('silent', '');
    const evaluator = await createEvaluator({ model: 'mlp', dataset: 'mnist', workerUrl: url });
    const params = new Float32Array(modelSpec('mlp').paramCount);
    const pending = evaluator.evaluate(params).catch((error: Error) => error);
    // Let the request reach the worker first.
    await new Promise((r) => setTimeout(r, 20));
    await evaluator.close();
    expect(await pending).toBeInstanceOf(Error);
    expect((await pending).toString()).toMatch(/evaluator closed/);
    await expect(evaluator.evaluate(params)).rejects.toThrow(/evaluator is closed/);
  });
});
