// Measures how far an honest update and its audit recomputation can differ (relative L2 error) across the
// backends involved, to choose AUDIT_TOLERANCE in src/server/core/audit.ts with margin:
//   wasm vs wasm: the agent's micro-batch split (32, 64, 128) against the auditor's 128
//   cpu vs wasm:  an agent on the pure-JS backend against the auditor on wasm
// and, for scale, what a fabricated update (same norm, random direction) scores.
//   npx tsx scripts/measure-audit-tolerance.ts [shards=60]
import { loadTf } from '../src/ml/backend';
import { loadDataset } from '../src/ml/datasets';
import { initialParams, modelSpec } from '../src/ml/models';
import { recomputeUpdate, shardIndices } from '../src/ml/recompute';
import { Trainer } from '../src/ml/trainer';
import { compareUpdates } from '../src/server/core/audit';
import { seededRandom } from '../src/protocol/permutation';

const shards = Number(process.argv[2] ?? 60);
const spec = modelSpec('mlp');
const dataset = await loadDataset('mnist');
const rand = seededRandom(7);

// Model versions along a short SGD run, so the check covers trained weights, not only the initial ones.
const wasm = await loadTf({ prefer: 'wasm' });
let params = initialParams(spec, 1);
const versions: Float32Array[] = [];
{
  const trainer = new Trainer(wasm.tf, spec);
  for (let v = 0; v < 30; v++) {
    versions.push(params.slice());
    const idx = shardIndices({ seed: 1, epoch: 0, shardStart: v * 64, shardCount: 64 }, dataset.trainSize);
    const g = recomputeUpdate(trainer, dataset, params, idx, spec.paramCount);
    params = params.map((p, i) => p - 0.1 * g[i]);
  }
}

interface Case { params: Float32Array; idx: Uint32Array }
const cases: Case[] = [];
for (let s = 0; s < shards; s++) {
  const count = [8, 16, 32, 64, 100, 256][s % 6];
  const start = Math.floor(rand() * (dataset.trainSize - count));
  cases.push({ params: versions[Math.floor(rand() * versions.length)], idx: shardIndices({ seed: 3, epoch: s % 3, shardStart: start, shardCount: count }, dataset.trainSize) });
}

const wasmTrainer = new Trainer(wasm.tf, spec);
const reference = cases.map((c) => recomputeUpdate(wasmTrainer, dataset, c.params, c.idx, spec.paramCount, 128));
const stats = (name: string, errors: number[]) => {
  const sorted = [...errors].sort((a, b) => a - b);
  console.log(`${name.padEnd(34)} n=${errors.length} median=${sorted[sorted.length >> 1].toExponential(2)} p99=${sorted[Math.floor(sorted.length * 0.99)].toExponential(2)} max=${sorted[sorted.length - 1].toExponential(2)}`);
};
console.log(`backend A: ${wasm.info.name}; shards of 8-256 MNIST samples over ${versions.length} model versions`);
for (const micro of [128, 64, 32]) {
  stats(`wasm(micro ${micro}) vs wasm(128)`, cases.map((c, i) => compareUpdates(recomputeUpdate(wasmTrainer, dataset, c.params, c.idx, spec.paramCount, micro), reference[i]).relativeError));
}
stats('fabricated (same norm, random dir)', reference.map((r) => {
  const fake = r.map(() => rand() - 0.5);
  const scale = Math.hypot(...r) / Math.hypot(...fake);
  return compareUpdates(fake.map((v) => v * scale), r).relativeError;
}));
const cpu = await loadTf({ prefer: 'cpu' });
const cpuTrainer = new Trainer(cpu.tf, spec);
console.log(`backend B: ${cpu.info.name}`);
stats('cpu(micro 128) vs wasm(128)', cases.map((c, i) => compareUpdates(recomputeUpdate(cpuTrainer, dataset, c.params, c.idx, spec.paramCount, 128), reference[i]).relativeError));
stats('cpu(micro 32) vs wasm(128)', cases.map((c, i) => compareUpdates(recomputeUpdate(cpuTrainer, dataset, c.params, c.idx, spec.paramCount, 32), reference[i]).relativeError));
