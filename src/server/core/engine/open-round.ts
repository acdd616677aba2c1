// Opening a round: who works (the node pool), how much each trains (the strategy), which samples (the cursor,
// and overlap's reservations: lookahead.ts), then the model, the assignments and the deadline go out.
import { hardDeadlineMs } from '../deadline';
import { DEFAULT_OUTER_OPTIMIZER } from '../optimizer';
import { openRound } from '../round';
import type { Assignment } from '../types';
import { codecsFor, roundMeasurements } from './adaptive-round';
import { overlaps, reserveNext, settleReservations, NO_RESERVATIONS } from './lookahead';
import { assign, changeNode, selectForRound } from './node-pool';
import { deadlinePolicy, roundNonce } from './rounds';
import { strategyFor } from './strategy';
import type { Transition } from './transition';

/** Opens the next round if the session may run one and any node is ready for it. */
export function maybeOpenRound(t: Transition): void {
  const { session: live, round, shuttingDown } = t.state;
  if (!live || round || shuttingDown || live.ending || live.completionPending) return;
  const session = t.state.durable.sessions.get(live.id)!;
  if (session.state !== 'running') return;
  if (session.config.maxRounds !== null && session.round >= session.config.maxRounds) return;
  if (session.config.maxSamples !== null && session.totalSamples >= session.config.maxSamples) return;
  const roundNumber = session.round + 1;
  const candidates = selectForRound(t.state.pool, session.id, roundNumber);
  if (candidates.length === 0) return;
  const config = session.config;
  const sizing = strategyFor(config).configureRound(
    candidates.map((id) => {
      const node = t.state.pool.get(id)!;
      return { id, samplesPerSecond: node.samplesPerSecond, measured: node.speedMeasured };
    }),
    roundMeasurements(t.state, candidates, config.batchSize),
  );
  // Nodes given no share (more nodes than the global batch has room for) sit this round out.
  const nodeIds = sizing.shares ? candidates.filter((_, i) => sizing.shares![i] > 0) : candidates;
  const shares = sizing.shares?.filter((s) => s > 0);
  const { samplesPerNode, localSteps } = sizing;
  const sizes = nodeIds.map((_, i) => shares?.[i] ?? samplesPerNode);
  // Overlap: a node in this round keeps the shard reserved for it (its agent may be training it already); every
  // other reservation goes back to the cursor before new shards are cut.
  const settled = settleReservations(live.cursor, live.reserved ?? NO_RESERVATIONS, nodeIds, sizes);
  // Every open of a round, also of the same round number after a cancel or a restart, gets its own attempt
  // number: an update computed for an earlier opening (another shard, perhaps) can never be credited here.
  const opens = t.state.opens + 1;
  t.set({ opens });
  const opened = openRound<number>({
    attempt: roundNonce(t.state.nonceSeed, opens),
    sessionId: session.id,
    round: roundNumber,
    modelVersion: session.modelVersion,
    now: t.at,
    nodeIds,
    cursor: settled.cursor,
    kept: settled.kept,
    batchSize: sizing.samplesPerNode,
    shares,
    trainSize: session.trainSize,
    timeoutMs: hardDeadlineMs(live.arrivals, deadlinePolicy(t.state)),
    local: localSteps === undefined ? undefined : { localSteps, innerOptimizer: config.optimizer, stepBatch: config.batchSize },
    codecs: codecsFor(t.state, nodeIds, config, session.paramCount, samplesPerNode),
    topKFraction: config.topKFraction,
  });
  // ...and is reserved its next shard, the size it was asked for now, told with its assignment.
  const next = overlaps(config) ? reserveNext(opened.cursor, nodeIds, sizes, session.trainSize) : { reserved: NO_RESERVATIONS, cursor: opened.cursor };
  t.setSession({ cursor: next.cursor, reserved: next.reserved });
  t.set({ round: { open: opened.round, stage: 'collecting', stragglerArmed: false, closedBecause: null, outcome: null } });
  t.emit({ type: 'send-model', nodeIds, sessionId: session.id, round: roundNumber, modelVersion: session.modelVersion });
  // With the outer optimizer, an agent predicts the next model from its own update and trains ahead from there.
  const outer = config.outerOptimizer ?? DEFAULT_OUTER_OPTIMIZER;
  const pool = new Map(t.state.pool);
  for (const [nodeId, assignment] of opened.round.assignments) {
    const reserved = next.reserved.get(nodeId)?.shard;
    const message: Assignment = reserved ? { ...assignment, next: { epoch: reserved.epoch, shardStart: reserved.start, shardCount: reserved.count, outer } } : assignment;
    t.emit({ type: 'send', nodeId, message: { v: 1, type: 'assignment', assignment: message } });
    // A node that kept its reservation has been training this shard since it delivered its last update: its speed
    // (samples over the time from start of work to delivery) is measured from then, not from now.
    const kept = settled.kept.has(nodeId);
    changeNode(pool, nodeId, (n) => assign(n, roundNumber, kept && n.deliveredAt !== undefined ? Math.min(n.deliveredAt, t.at) : t.at));
    t.publishNode(nodeId);
  }
  t.set({ pool });
  t.emit({ type: 'set-timer', timer: 'deadline', delayMs: opened.round.deadlineAt - t.at, round: roundNumber });
}
