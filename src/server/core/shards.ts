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
/** `batchSize`: one size for every shard, or one per shard (work sized to each node's speed). */
export function takeShards(cursor: DataCursor, count: number, batchSize: number | readonly number[], trainSize: number): { shards: Shard[]; cursor: DataCursor } {
  const pending = cursor.pending.slice();
  let { epoch, position } = cursor;
  const shards: Shard[] = [];
  const sizes = batchSize;
  while (shards.length < count) {
    const batchSize = typeof sizes === 'number' ? sizes : sizes[shards.length];
    const returned = pending.shift();
    if (returned) {
      if (returned.count <= batchSize) {
        shards.push(returned);
      } else {
        shards.push({ epoch: returned.epoch, start: returned.start, count: batchSize });
        pending.unshift({ epoch: returned.epoch, start: returned.start + batchSize, count: returned.count - batchSize });
      }
      continue;
    }
    if (position >= trainSize) {
      epoch += 1;
      position = 0;
    }
    const take = Math.min(batchSize, trainSize - position);
    shards.push({ epoch, start: position, count: take });
    position += take;
  }
  return { shards, cursor: { epoch, position, pending } };
}

/** Puts undelivered shards back at the front of the queue, oldest first. */
export function returnShards(cursor: DataCursor, shards: Shard[]): DataCursor {
  return { ...cursor, pending: [...shards, ...cursor.pending] };
}
