// The update an honest agent sends for an assignment, computed again: the same slice of the same epoch
// permutation, the mean gradient summed in the same micro-batches the agent uses (training-loop.ts), so only the
// backend's float rounding separates the two. Used by the coordinator's auditor and by the tolerance measurement.
import { epochPermutation } from '../protocol/permutation';
import type { Dataset } from './datasets';
import type { Trainer } from './trainer';

export interface ShardRef {
  seed: number;
  epoch: number;
  shardStart: number;
  shardCount: number;
}

export function shardIndices(ref: ShardRef, trainSize: number, cache?: { key: string; perm: Uint32Array }): Uint32Array {
  const key = `${ref.seed}/${ref.epoch}/${trainSize}`;
  const perm = cache?.key === key ? cache.perm : epochPermutation(ref.seed, ref.epoch, trainSize);
  if (cache && cache.key !== key) {
    cache.key = key;
    cache.perm = perm;
  }
  return perm.subarray(Math.min(ref.shardStart, trainSize), Math.min(trainSize, ref.shardStart + ref.shardCount));
}

/** The mean gradient over the shard at `params` (the model version the node trained from). */
export function recomputeUpdate(
  trainer: Pick<Trainer, 'setParams' | 'accumulateGradient'>,
  dataset: Pick<Dataset, 'inputShape' | 'fillTrainBatch'>,
  params: Float32Array,
  indices: Uint32Array,
  paramCount: number,
  microBatch = 128,
): Float32Array {
  if (indices.length === 0) throw new RangeError('the shard is empty: nothing to recompute');
  trainer.setParams(params);
  const inputSize = dataset.inputShape.reduce((p, d) => p * d, 1);
  const x = new Float32Array(Math.min(microBatch, indices.length) * inputSize);
  const y = new Int32Array(Math.min(microBatch, indices.length));
  const out = new Float32Array(paramCount);
  for (let offset = 0; offset < indices.length; offset += microBatch) {
    const count = Math.min(microBatch, indices.length - offset);
    dataset.fillTrainBatch(indices.subarray(offset, offset + count), x, y);
    trainer.accumulateGradient(x, y, count, out, count / indices.length, microBatch);
  }
  return out;
}
