// The single-process baseline of the throughput benchmark: the same model (MLP), the same tfjs backend the
// agents pick (loadTf), the same data and batch, in one process: Trainer.computeGradient on a batch of the
// epoch permutation, then the server's own Adam step (core/optimizer.ts), then setParams, in a loop.
//   node --import tsx bench/lib/single-process.ts --seconds 10 --micro 128 --batch 128
// Prints one JSON line: samples/s per window and their median.
import { parseArgs } from 'node:util';
import { loadTf } from '../../src/ml/backend';
import { loadDataset } from '../../src/ml/datasets';
import { initialParams, modelSpec } from '../../src/ml/models';
import { Trainer } from '../../src/ml/trainer';
import { applyOptimizerStep, createOptimizerState } from '../../src/server/core/optimizer';
import { resolveSessionConfig } from '../../src/server/core/session-config';
import { epochPermutation } from '../../src/server/core/shards';

const { values } = parseArgs({
  options: { seconds: { type: 'string' }, micro: { type: 'string' }, batch: { type: 'string' }, warmup: { type: 'string' }, window: { type: 'string' } },
  strict: true,
});
const seconds = Number(values.seconds ?? 10);
const microBatch = Number(values.micro ?? 128);
const batch = Number(values.batch ?? 128);
const warmupS = Number(values.warmup ?? 2);
const windowS = Number(values.window ?? 2);

const { tf, info } = await loadTf();
const dataset = await loadDataset('mnist');
const spec = modelSpec('mlp');
// The session defaults the system runs with (Adam, its learning rate).
const config = resolveSessionConfig({ model: 'mlp', batchSize: batch });
const trainer = new Trainer(tf, spec);
const params = initialParams(spec, config.seed);
const optimizer = createOptimizerState(config.optimizer, spec.paramCount);
const inputSize = dataset.inputShape.reduce((a, b) => a * b, 1);
const x = new Float32Array(batch * inputSize);
const y = new Int32Array(batch);
let epoch = 0;
let perm = epochPermutation(config.seed, epoch, dataset.trainSize);
let position = 0;

function step(): void {
  if (position + batch > perm.length) {
    epoch += 1;
    perm = epochPermutation(config.seed, epoch, dataset.trainSize);
    position = 0;
  }
  const indices = perm.subarray(position, position + batch);
  position += batch;
  dataset.fillTrainBatch(indices, x, y);
  trainer.setParams(params);
  const { gradient } = trainer.computeGradient(x, y, batch, microBatch);
  applyOptimizerStep(config.optimizer, optimizer, params, gradient);
}

const warmupEnd = performance.now() + warmupS * 1000;
while (performance.now() < warmupEnd) step();
const windows: number[] = [];
const end = performance.now() + seconds * 1000;
while (performance.now() < end) {
  const started = performance.now();
  let samples = 0;
  while (performance.now() - started < windowS * 1000) {
    step();
    samples += batch;
  }
  windows.push(samples / ((performance.now() - started) / 1000));
}
const sorted = [...windows].sort((a, b) => a - b);
const median = sorted.length % 2 ? sorted[sorted.length >> 1] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
process.stdout.write(`${JSON.stringify({ backend: `${info.name} (${info.device})`, batch, microBatch, windows, samplesPerSecond: median })}\n`);
process.exit(0);
