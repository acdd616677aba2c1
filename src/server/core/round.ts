// One synchronous round: who is assigned what, which updates are admitted, and when and how it closes.
// Pure and immutable: time comes in as arguments, every change returns a new round. The engine drives it.
import { AdmissionError } from '../../protocol/errors';
import { returnShards, takeShards, type DataCursor, type Shard } from './shards';
import type { Assignment } from './types';

export interface AcceptedUpdate<TSlot> {
  nodeId: number;
  attempt: number;
  samples: number;
  trainLoss: number;
  checksum: number;
  receivedAt: number;
  slot: TSlot;
  /** L2 norm of the update (for norm clipping); absent: not measured. */
  norm?: number;
  /** The relative norm limit it was over when accepted: it counts as if its norm were this (engine/rounds.ts). */
  clipTo?: number;
}

export interface OpenRound<TSlot> {
  sessionId: number;
  round: number;
  modelVersion: number;
  openedAt: number;
  deadlineAt: number;
  assignments: ReadonlyMap<number, Assignment>;
  accepted: ReadonlyMap<number, AcceptedUpdate<TSlot>>;
  failed: ReadonlyMap<number, string>;
  /**
   * Nodes in `failed` because their update for this round was refused (a bad norm, NaNs, a wrong count): they
   * answered, and agents do not resend a refused update, so the round stops waiting for them. Unlike a node that
   * went silent, this is not a missed round.
   */
  refused: ReadonlySet<number>;
}

export interface RoundPlan {
  sessionId: number;
  round: number;
  modelVersion: number;
  now: number;
  nodeIds: number[];
  cursor: DataCursor;
  batchSize: number;
  /** Samples per node, in the order of nodeIds (work sized to speed); absent: batchSize for everyone. */
  shares?: readonly number[];
  trainSize: number;
  timeoutMs: number;
  /** Attempt number per node for this round (retries of the same round after a coordinator restart). */
  attempt?: number;
  /** Local-steps rounds: H, the samples per inner step and the inner optimizer, the same for every node. */
  local?: Required<Pick<Assignment, 'localSteps' | 'innerOptimizer'>> & { stepBatch: number };
  /** Per node: how its update travels (absent: float32), and top-k's share. */
  codecs?: ReadonlyMap<number, NonNullable<Assignment['codec']>>;
  topKFraction?: number;
  /** Shards already reserved for some of the nodes (overlap's lookahead): theirs, instead of cutting new ones. */
  kept?: ReadonlyMap<number, Shard>;
}

function codecFields(plan: RoundPlan, nodeId: number): Pick<Assignment, 'codec' | 'topKFraction'> {
  const codec = plan.codecs?.get(nodeId);
  if (!codec || codec === 'float32') return {};
  return codec === 'top-k' && plan.topKFraction !== undefined ? { codec, topKFraction: plan.topKFraction } : { codec };
}

export function openRound<TSlot>(plan: RoundPlan): { round: OpenRound<TSlot>; cursor: DataCursor } {
  if (plan.nodeIds.length === 0) throw new Error(`round ${plan.round} cannot open without nodes`);
  // Nodes holding a reservation train it; the others get shards cut now (returned work first, then fresh data).
  const fresh = plan.nodeIds.map((_, i) => i).filter((i) => !plan.kept?.has(plan.nodeIds[i]));
  const taken = takeShards(plan.cursor, fresh.length, plan.shares ? fresh.map((i) => plan.shares![i]) : plan.batchSize, plan.trainSize);
  const shards: Shard[] = plan.nodeIds.map((id) => plan.kept?.get(id)!);
  fresh.forEach((i, k) => (shards[i] = taken.shards[k]));
  const cursor = taken.cursor;
  const deadlineAt = plan.now + plan.timeoutMs;
  const assignments = new Map<number, Assignment>();
  plan.nodeIds.forEach((nodeId, i) => {
    const shard = shards[i];
    assignments.set(nodeId, {
      sessionId: plan.sessionId,
      round: plan.round,
      modelVersion: plan.modelVersion,
      nodeId,
      attempt: plan.attempt ?? 1,
      epoch: shard.epoch,
      shardStart: shard.start,
      shardCount: shard.count,
      batchSize: plan.local ? plan.local.stepBatch : (plan.shares?.[i] ?? plan.batchSize),
      deadlineAt,
      ...(plan.local ? { localSteps: plan.local.localSteps, innerOptimizer: plan.local.innerOptimizer } : {}),
      ...codecFields(plan, nodeId),
    });
  });
  return {
    round: {
      sessionId: plan.sessionId,
      round: plan.round,
      modelVersion: plan.modelVersion,
      openedAt: plan.now,
      deadlineAt,
      assignments,
      accepted: new Map(),
      failed: new Map(),
      refused: new Set(),
    },
    cursor,
  };
}

export interface UpdateClaim {
  sessionId: number;
  round: number;
  nodeId: number;
  attempt: number;
  modelVersion: number;
  sampleCount: number;
}

/**
 * Decides whether an update may enter the round. `senderId` is the node the connection registered as;
 * the frame's own node id must match it (a node cannot submit work under another node's id).
 * Returns the assignment the update answers, or throws AdmissionError with a reason the agent is told.
 */
export function admitUpdate<TSlot>(open: OpenRound<TSlot> | null, currentSessionId: number | null, senderId: number, claim: UpdateClaim): Assignment {
  if (currentSessionId === null || claim.sessionId !== currentSessionId) {
    throw new AdmissionError('UNKNOWN_SESSION', `update for session ${claim.sessionId}, but the current session is ${currentSessionId ?? 'none'}`);
  }
  if (claim.nodeId !== senderId) {
    throw new AdmissionError('WRONG_NODE', `connection is node ${senderId} but the update claims node ${claim.nodeId}`);
  }
  if (!open) throw new AdmissionError('STALE_ROUND', `session ${claim.sessionId} has no open round; update for round ${claim.round} dropped`);
  if (claim.round < open.round) {
    throw new AdmissionError('STALE_ROUND', `session ${claim.sessionId} round ${claim.round} is closed (current round ${open.round})`);
  }
  if (claim.round > open.round) {
    throw new AdmissionError('FUTURE_ROUND', `session ${claim.sessionId} round ${claim.round} has not opened (current round ${open.round})`);
  }
  const assignment = open.assignments.get(senderId);
  if (!assignment) throw new AdmissionError('NOT_ASSIGNED', `node ${senderId} has no assignment in round ${open.round}`);
  if (open.failed.has(senderId)) {
    throw new AdmissionError('NOT_ASSIGNED', `node ${senderId} was dropped from round ${open.round}: ${open.failed.get(senderId)}`);
  }
  if (open.accepted.has(senderId)) {
    throw new AdmissionError('DUPLICATE', `node ${senderId} already delivered round ${open.round}`);
  }
  if (claim.attempt !== assignment.attempt) {
    throw new AdmissionError('STALE_ATTEMPT', `update answers attempt ${claim.attempt} of round ${open.round}, which was opened again as attempt ${assignment.attempt} (its shard may differ): drop it`);
  }
  if (claim.modelVersion !== open.modelVersion) {
    throw new AdmissionError('STALE_MODEL', `update computed on model version ${claim.modelVersion}, round ${open.round} trains version ${open.modelVersion}`);
  }
  if (claim.sampleCount !== assignment.shardCount) {
    throw new AdmissionError('BAD_SAMPLE_COUNT', `update claims ${claim.sampleCount} samples, the assignment was ${assignment.shardCount}`);
  }
  return assignment;
}

export function acceptUpdate<TSlot>(open: OpenRound<TSlot>, update: AcceptedUpdate<TSlot>): OpenRound<TSlot> {
  const accepted = new Map(open.accepted);
  accepted.set(update.nodeId, update);
  return { ...open, accepted };
}

/**
 * A node assigned in this round failed or left; its shard goes back to the queue when the round closes.
 * Returns the same round when the node had nothing outstanding in it.
 */
export function dropNode<TSlot>(open: OpenRound<TSlot>, nodeId: number, reason: string): OpenRound<TSlot> {
  if (!open.assignments.has(nodeId) || open.accepted.has(nodeId) || open.failed.has(nodeId)) return open;
  const failed = new Map(open.failed);
  failed.set(nodeId, reason);
  return { ...open, failed };
}

/** The node's update for this round was refused: it failed the round with `reason`, and answered (see `refused`). */
export function refuseNode<TSlot>(open: OpenRound<TSlot>, nodeId: number, reason: string): OpenRound<TSlot> {
  const failed = dropNode(open, nodeId, reason);
  if (failed === open) return open;
  return { ...failed, refused: new Set(open.refused).add(nodeId) };
}

/** Every assigned node has either delivered or failed: no reason to wait for the deadline. */
export function isRoundComplete<TSlot>(open: OpenRound<TSlot>): boolean {
  return open.accepted.size + open.failed.size >= open.assignments.size;
}

export interface RoundOutcome<TSlot> {
  apply: boolean;
  reason: string;
  accepted: AcceptedUpdate<TSlot>[];
  /** Nodes that were assigned but did not deliver (failed, refused, or missed the deadline), with why. */
  missing: { nodeId: number; reason: string; refused: boolean }[];
  samples: number;
  trainLoss: number;
  cursor: DataCursor;
}

/**
 * Closes the round: applies if at least `minUpdates` updates arrived (quorum), and returns undelivered
 * shards to the cursor so no data is silently skipped. When the round is not applied, the shards of its
 * accepted updates go back too: their samples never reached the model.
 */
export interface QuorumPolicy {
  /** At least this many updates... */
  minUpdates: number;
  /** ...and at least this fraction of the nodes assigned to the round. */
  minCompletion: number;
}

/** Updates a round needs to be applied. */
export function quorumSize(assigned: number, policy: QuorumPolicy): number {
  return Math.max(1, policy.minUpdates, Math.ceil(policy.minCompletion * assigned - 1e-9));
}

export function closeRound<TSlot>(open: OpenRound<TSlot>, cursor: DataCursor, policy: QuorumPolicy, now: number): RoundOutcome<TSlot> {
  const accepted = [...open.accepted.values()].sort((a, b) => a.nodeId - b.nodeId);
  const missing: RoundOutcome<TSlot>['missing'] = [];
  const undelivered: Shard[] = [];
  for (const [nodeId, assignment] of open.assignments) {
    if (open.accepted.has(nodeId)) continue;
    const reason = open.failed.get(nodeId) ?? `missed the round deadline (${now - open.openedAt} ms)`;
    missing.push({ nodeId, reason, refused: open.refused.has(nodeId) });
    undelivered.push({ epoch: assignment.epoch, start: assignment.shardStart, count: assignment.shardCount });
  }
  const needed = quorumSize(open.assignments.size, policy);
  const apply = accepted.length >= needed;
  if (!apply) {
    for (const update of accepted) {
      const a = open.assignments.get(update.nodeId)!;
      undelivered.push({ epoch: a.epoch, start: a.shardStart, count: a.shardCount });
    }
  }
  undelivered.sort((a, b) => a.epoch - b.epoch || a.start - b.start);
  const samples = accepted.reduce((sum, u) => sum + u.samples, 0);
  const trainLoss = samples > 0 ? accepted.reduce((sum, u) => sum + u.trainLoss * u.samples, 0) / samples : NaN;
  return {
    apply,
    reason: apply ? `${accepted.length} of ${open.assignments.size} updates` : `only ${accepted.length} of ${open.assignments.size} updates arrived (quorum ${needed})`,
    accepted,
    missing,
    samples: apply ? samples : 0,
    trainLoss,
    cursor: undelivered.length > 0 ? returnShards(cursor, undelivered) : cursor,
  };
}
