// Overlap for local-steps sessions: a one-round lookahead of the data. When a round opens, each of its nodes is
// also reserved the shard it will train in the next round (sized like this one), and told so with its assignment,
// so the agent can start those inner steps the moment it sent this round's update instead of idling while the
// update travels, the round commits and the next model comes back. When the next round opens, a node that is in it
// and asked for the same size keeps its reservation as its assignment; every other reservation goes back to the
// cursor's pending shards, handed out again before fresh data (so a node that failed or left gives its reservation
// back at the next open, not at once: reservations change only when a round opens or is cancelled, never while a
// commit is in flight). Nothing is credited here: a reservation becomes
// credit only through an assignment and an accepted update, like any shard.
//
// Reservations live only in memory. The cursor a commit records counts them as not handed out (durableCursor), so
// an epoch never closes on reserved samples and a restarted coordinator hands them out again. Pure.
import type { SessionConfig } from '../types';
import { takeShards, type DataCursor, type Shard } from '../shards';

export interface Reservation {
  shard: Shard;
  /** Samples the node was asked for when reserved (the shard is shorter at an epoch's end). */
  requested: number;
}

export type Reservations = ReadonlyMap<number, Reservation>;

export const NO_RESERVATIONS: Reservations = new Map();

/** Whether a session reserves next shards: it asked for overlap and runs local steps. */
export function overlaps(config: SessionConfig): boolean {
  const local = config.localSteps === 'auto' || (typeof config.localSteps === 'number' && config.localSteps > 1);
  return config.overlap === true && local;
}

/**
 * At a round's open, for its nodes and the samples each is asked for (same order): the reservations that become
 * assignments now, and the cursor with every other reservation given back.
 */
export function settleReservations(cursor: DataCursor, reserved: Reservations, nodeIds: readonly number[], sizes: readonly number[]): { kept: Map<number, Shard>; cursor: DataCursor } {
  const kept = new Map<number, Shard>();
  const back: Shard[] = [];
  const asked = new Map(nodeIds.map((id, i) => [id, sizes[i]]));
  for (const [nodeId, r] of reserved) {
    if (asked.get(nodeId) === r.requested) kept.set(nodeId, r.shard);
    else back.push(r.shard);
  }
  return { kept, cursor: giveBack(cursor, back) };
}

/** Reserves each node's next shard, sized like what it was asked for this round (same order as nodeIds). */
export function reserveNext(cursor: DataCursor, nodeIds: readonly number[], sizes: readonly number[], trainSize: number): { reserved: Map<number, Reservation>; cursor: DataCursor } {
  const taken = takeShards(cursor, nodeIds.length, sizes, trainSize);
  return { reserved: new Map(nodeIds.map((id, i) => [id, { shard: taken.shards[i], requested: sizes[i] }])), cursor: taken.cursor };
}

/** Gives every reservation back (the round was cancelled, the session is stopping). */
export function releaseAll(cursor: DataCursor, reserved: Reservations): DataCursor {
  return giveBack(cursor, [...reserved.values()].map((r) => r.shard));
}

/** The cursor a commit records: reserved shards count as not handed out yet. */
export function durableCursor(cursor: DataCursor, reserved: Reservations | undefined): DataCursor {
  return reserved && reserved.size > 0 ? releaseAll(cursor, reserved) : cursor;
}

/** Returned shards join the pending ones oldest first, whichever was returned first (an epoch closes sooner). */
function giveBack(cursor: DataCursor, shards: Shard[]): DataCursor {
  if (shards.length === 0) return cursor;
  return { ...cursor, pending: [...shards, ...cursor.pending].sort((a, b) => a.epoch - b.epoch || a.start - b.start) };
}
