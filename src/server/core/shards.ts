// Which samples each node trains on. Agent and coordinator derive the same epoch permutation from
// (seed, epoch), so an assignment is two integers on the wire, never a list of indices or the data itself.

export { epochPermutation, seededRandom } from '../../protocol/permutation';

export interface Shard {
  epoch: number;
  start: number;
  count: number;
}

/** Where the session stands in its pass over the data, plus shards handed out but never delivered. */
export interface DataCursor {
  epoch: number;
  position: number;
  /** Shards of failed or discarded work, handed out again before fresh data. */
  pending: Shard[];
}

export function freshCursor(): DataCursor {
  return { epoch: 0, position: 0, pending: [] };
}

/**
 * Cuts `count` shards of up to `batchSize` samples: first from pending (returned) work, then fresh data.
 * A shard never crosses an epoch boundary; the cursor moves to the next epoch when one is used up.
 * Returns the shards and the cursor after them; the input cursor is not modified.
 */
/**
 * `batchSize`: one size for every shard, or one per shard (work sized to each node's speed). With sizes per
 * shard, the smallest requests are served first, so returned work (often small pieces) goes to the nodes asked
 * for least and a fast node's large share comes from fresh data; what returned pieces fall short of their
 * requests is added to the largest fresh request, so the step keeps its size after a failure (while any node
 * takes fresh data). Shards come back in the order of the sizes given.
 */
export function takeShards(cursor: DataCursor, count: number, batchSize: number | readonly number[], trainSize: number): { shards: Shard[]; cursor: DataCursor } {
  const pending = cursor.pending.slice();
  let { epoch, position } = cursor;
  const shards: Shard[] = new Array(count);
  const sizes = batchSize;
  const order = Array.from({ length: count }, (_, i) => i);
  if (typeof sizes !== 'number') order.sort((a, b) => sizes[a] - sizes[b] || a - b);
  let shortfall = 0;
  for (const i of order) {
    const requested = typeof sizes === 'number' ? sizes : sizes[i];
    const returned = pending.shift();
    if (returned) {
      const batchSize = requested;
      if (returned.count <= batchSize) {
        shards[i] = returned;
        if (typeof sizes !== 'number') shortfall += batchSize - returned.count;
      } else {
        shards[i] = { epoch: returned.epoch, start: returned.start, count: batchSize };
        pending.unshift({ epoch: returned.epoch, start: returned.start + batchSize, count: returned.count - batchSize });
      }
      continue;
    }
    if (position >= trainSize) {
      epoch += 1;
      position = 0;
    }
    const batchSize = i === order[order.length - 1] ? requested + shortfall : requested;
    const take = Math.min(batchSize, trainSize - position);
    shards[i] = { epoch, start: position, count: take };
    position += take;
  }
  return { shards, cursor: { epoch, position, pending } };
}

/** Puts undelivered shards back at the front of the queue, oldest first. */
export function returnShards(cursor: DataCursor, shards: Shard[]): DataCursor {
  return { ...cursor, pending: [...shards, ...cursor.pending] };
}
