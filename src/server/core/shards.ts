// Which samples each node trains on. Agent and coordinator derive the same epoch permutation from
// (seed, epoch), so an assignment is two integers on the wire, never a list of indices or the data itself.

/** splitmix32-style generator: tiny, fast, and identical on every platform. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z ^= z >>> 16;
    return (z >>> 0) / 4294967296;
  };
}

/** Fisher-Yates shuffle of [0, n) seeded by (seed, epoch). */
export function epochPermutation(seed: number, epoch: number, n: number): Uint32Array {
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  const rand = seededRandom((Math.imul(seed >>> 0, 0x27d4eb2d) ^ Math.imul(epoch + 1, 0x165667b1)) >>> 0);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm;
}

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
export function takeShards(cursor: DataCursor, count: number, batchSize: number, trainSize: number): { shards: Shard[]; cursor: DataCursor } {
  const pending = cursor.pending.slice();
  let { epoch, position } = cursor;
  const shards: Shard[] = [];
  while (shards.length < count) {
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
