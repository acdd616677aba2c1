// The round lifecycle: open -> collect (admit, ingest, accept) -> close (cut-off, deadline or everyone in)
// -> aggregate -> commit -> apply. Each function takes the step's Transition and records the new state and
// the effects; none does I/O.
import { CLOSE_CODES } from '../../../protocol/messages';
import { FRAME_HEADER_BYTES, FrameKind } from '../../../protocol/frame';
import { HyperGpuError } from '../../../protocol/errors';
import { arrivalQuantile, DEFAULT_DEADLINE_POLICY, keepRecent, stragglerCutoffMs, type DeadlinePolicy } from '../deadline';
import { acceptUpdate, admitUpdate, closeRound, dropNode, isRoundComplete, refuseNode } from '../round';
import { returnShards } from '../shards';
import type { ContributionRecord } from '../types';
import { roundRecords, committedSnapshot } from './accounting';
import type { CommittedEvent } from './committed';
import type { EngineEvent, UpdateHeader } from './events';
import { BAN_MS, disconnect, heard, changeNode, countRejection, delivered, missedRound, OFFENDER_LIMIT, OFFENDER_WINDOW_MS, refusedRound, setStatus, updateNode } from './node-pool';
import { durableCursor, releaseAll } from './lookahead';
import type { EngineState } from './state';
import { recordOutlierScores } from './outliers';
import { strategyFor } from './strategy';
import type { Transition } from './transition';

/** A non-zero 31-bit nonce from (seed, n): splitmix32, the same mixer the shard permutation uses (31 bits: the
 * ledger stores attempts as signed 32-bit integers). */
export function roundNonce(seed: number, n: number): number {
  let z = (seed + Math.imul(n, 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z = (z ^ (z >>> 16)) & 0x7fffffff;
  return z === 0 ? 1 : z;
}

/** Refused shards remembered at most (oldest forgotten first): bounded whatever a session runs into. */
const NORM_REFUSED_SHARDS_KEPT = 1024;

function rememberRefusedShard(shards: ReadonlySet<string> | undefined, shard: string): Set<string> {
  const next = new Set(shards);
  next.delete(shard);
  next.add(shard);
  for (const old of next) {
    if (next.size <= NORM_REFUSED_SHARDS_KEPT) break;
    next.delete(old);
  }
  return next;
}

/** Accepted norms needed before the relative limits apply (until then the absolute one alone). */
const NORMS_BEFORE_RELATIVE_LIMIT = 8;

/**
 * The relative screen's refusal limit: the larger of NORM_REFUSE_OVER_CLIP x the clipping limit (100x the median at
 * the default ratio of 10) and NORM_REFUSE_OVER_P90 x the 90th percentile of the recent norms. Why both, and why
 * clip first: late in training honest gradients are bimodal (most batches are fitted and give tiny gradients, a
 * batch with a hard sample a large one), so the median falls while the hard batches do not. Over 12,000 rounds of
 * the session defaults (npm run bench -- norm-screen), honest norms reached 197x the median of the 64 before them;
 * refusing over 10x the median turned away 4.9% of honest updates (16% in the worst 1,000 rounds), and this screen
 * turns away none and clips 4.9%. Clipping at 10x keeps what refusing was for - no update counts for more than 10x
 * a typical one - and keeps the honest node's work and credit; the 90th percentile follows the hard batches, so
 * only an update far past them is refused.
 */
export const NORM_REFUSE_OVER_CLIP = 10;
export const NORM_REFUSE_OVER_P90 = 10;

/** What the relative norm screen does with an update: its limits, and why each is what it is. */
export interface NormScreen {
  /** Over this the update counts as if its norm were this (scaled down at aggregation); null: no clipping. */
  clipAt: number | null;
  clipWhy: string;
  /** Over this it is refused (ABSURD_NORM). */
  refuseAt: number;
  refuseWhy: string;
}

/** Accepted norms needed before the 90th percentile may raise the refusal limit: with fewer, it is one of the top few. */
const NORMS_BEFORE_P90_LIMIT = 32;

/**
 * The norm screen for an update, from the session's absolute limit and the norms of recently accepted updates
 * (the window; 8 of them at least, else the absolute limit alone): clipped over `ratio` x their median, refused
 * over the larger of NORM_REFUSE_OVER_CLIP times that and NORM_REFUSE_OVER_P90 x their 90th percentile (with 32
 * norms or more), or over the absolute limit. `waived`: the update's shard was refused against the relative limit
 * once already, so only the absolute limit refuses it now (it is still clipped).
 *
 * The median is the clipping reference because scaled-up updates from a minority of the nodes cannot move it. The
 * 90th percentile they can: a patient minority delivering a tenth of the accepted updates can raise the refusal
 * limit step by step up to the session's, but never what their updates count for (the clip). When at least half
 * the recent norms are 0 there is no median to clip to (every update would count as nothing, and the window would
 * never recover): then only the 90th percentile refuses.
 */
export function normScreen(absolute: number, norms: readonly number[], ratio: number, waived = false): NormScreen {
  const sessionLimit = { refuseAt: absolute, refuseWhy: 'the session limit' };
  if (ratio <= 0 || norms.length < NORMS_BEFORE_RELATIVE_LIMIT) return { clipAt: null, clipWhy: '', ...sessionLimit };
  const median = arrivalQuantile(norms, 0.5)!;
  const p90 = norms.length >= NORMS_BEFORE_P90_LIMIT || !(median > 0) ? arrivalQuantile(norms, 0.9)! : 0;
  const of = 'of recently accepted updates';
  const byMedian = { refuseAt: NORM_REFUSE_OVER_CLIP * ratio * median, refuseWhy: `${ratio * NORM_REFUSE_OVER_CLIP}x the median ${median.toExponential(3)} ${of}` };
  const byP90 = { refuseAt: NORM_REFUSE_OVER_P90 * p90, refuseWhy: `${NORM_REFUSE_OVER_P90}x the 90th percentile ${p90.toExponential(3)} ${of}` };
  const relative = byMedian.refuseAt >= byP90.refuseAt ? byMedian : byP90;
  const screen = !waived && relative.refuseAt > 0 && relative.refuseAt < absolute ? relative : sessionLimit;
  const clip = ratio * median;
  return clip > 0 && clip < screen.refuseAt ? { clipAt: clip, clipWhy: `${ratio}x the median ${median.toExponential(3)} ${of}`, ...screen } : { clipAt: null, clipWhy: '', ...screen };
}

/** How often the log sums up the updates clipped to the relative norm limit (the first of a session is logged at once). */
const CLIP_LOG_INTERVAL_MS = 60_000;

export function deadlinePolicy(state: EngineState): DeadlinePolicy {
  const session = state.session && state.durable.sessions.get(state.session.id);
  return { ...DEFAULT_DEADLINE_POLICY, ...state.options.deadline, ceilingMs: session?.config.roundTimeoutMs ?? 30_000 };
}

/**
 * A rejected update: the agent is told why at once; the ledger gets one row per (round, node, reason) with a
 * count, written when the round closes (or within a second), so a flood of bad frames costs a counter, not
 * a write, a log line and a publish each. A node that keeps sending junk is disconnected and refused a while.
 */
export function rejectUpdate(t: Transition, nodeId: number, header: UpdateHeader | null, code: string, reason: string): void {
  const node = t.state.pool.get(nodeId);
  const round = header?.round ?? 0;
  if (node) t.emit({ type: 'send', nodeId, message: { v: 1, type: 'rejected', round, code, reason } });
  const live = t.state.session;
  const key = `${round}:${nodeId}:${code}`;
  const tally = live?.rejections.get(key);
  if (!tally) t.log('warn', `rejected update from node #${nodeId} for round ${round}: ${code}: ${reason}`);
  if (live) {
    const rejections = new Map(live.rejections);
    rejections.set(
      key,
      tally
        ? { ...tally, count: tally.count + 1 }
        : {
            count: 1,
            record: {
              sessionId: live.id,
              round,
              nodeId,
              attempt: header?.attempt ?? 0,
              samples: header?.sampleCount ?? 0,
              checksum: header?.checksum ?? 0,
              trainLoss: header && Number.isFinite(header.trainLoss) ? header.trainLoss : 0,
              epoch: 0,
              shardStart: 0,
              shardCount: 0,
              status: 'rejected',
              reason: `${code}: ${reason}`,
              receivedAt: t.at,
            },
          },
    );
    t.setSession({ rejections, rejectionsSince: live.rejectionsSince ?? t.at });
  }
  if (!node) return;
  const counted = countRejection(node, t.at);
  t.set({ pool: updateNode(t.state.pool, nodeId, () => counted.node) });
  answeredWithRefusal(t, nodeId, header, code, reason);
  if (counted.banned && node.connection !== null) {
    const why = `more than ${OFFENDER_LIMIT} rejected updates in ${OFFENDER_WINDOW_MS / 1000} s; refused for ${BAN_MS / 1000} s`;
    onNodeLost(t, { nodeId, connection: node.connection, reason: why, left: false });
    closeConnection(t, nodeId, node.connection, 'banned', why);
  }
}

/**
 * A refused update that answers the node's assignment in the open round (this round, this session, this attempt,
 * sent by the node it names): agents do not resend a refused update, so waiting for the node until the straggler
 * cut-off or the deadline only stalls everyone else. It fails the round as refused; its shard returns to the
 * cursor when the round closes. Measured in a 16-minute soak before this: late in training about 1 round in 9
 * waited 300-1,000 ms for a node whose update had been refused (from round 10,000 on, 93 of 136 s of wall time),
 * and three refusals in a row benched an honest node as if it had missed its rounds.
 */
function answeredWithRefusal(t: Transition, nodeId: number, header: UpdateHeader | null, code: string, reason: string): void {
  const round = t.state.round;
  if (!header || !round || round.stage !== 'collecting') return;
  const open = round.open;
  const assignment = open.assignments.get(nodeId);
  if (!assignment || header.sessionId !== open.sessionId || header.round !== open.round || header.nodeId !== nodeId || header.attempt !== assignment.attempt) return;
  const next = refuseNode(open, nodeId, `update refused: ${code}: ${reason}`);
  if (next === open) return;
  t.setRound({ open: next });
  t.set({ pool: updateNode(t.state.pool, nodeId, (n) => refusedRound(n, open.round, code, t.at)) });
  t.publishNode(nodeId);
  checkRoundProgress(t);
}

/** Writes the rejection tallies (one row and one credit event per round, node and reason). */
export function flushRejections(t: Transition): void {
  const live = t.state.session;
  if (!live || live.rejections.size === 0) return;
  const nodes = new Set<number>();
  for (const { record, count } of live.rejections.values()) {
    const events: CommittedEvent[] = [{ kind: 'node-credited', sessionId: live.id, round: record.round, nodeId: record.nodeId, status: 'rejected', samples: 0, ...(count > 1 ? { count } : {}) }];
    t.commit(events);
    t.emit({ type: 'record-rejection', record: count > 1 ? { ...record, count } : record, events });
    if (count > 1) t.log('warn', `node #${record.nodeId}: ${count} updates for round ${record.round} rejected with ${record.reason!.split(':')[0]} in all`);
    nodes.add(record.nodeId);
  }
  t.setSession({ rejections: new Map(), rejectionsSince: null });
  for (const nodeId of nodes) t.publishNode(nodeId);
}

/** The header of a binary frame arrived: admit it against the open round, or refuse it before any copy. */
export function onUpdateArrived(t: Transition, e: Extract<EngineEvent, { type: 'update-arrived' }>): void {
  const node = t.state.pool.get(e.nodeId);
  if (!node || node.connection !== e.connection) return;
  // A frame is a heartbeat too (the gateway sends no separate one for it: one step per update, not two).
  t.set({ pool: updateNode(t.state.pool, e.nodeId, (n) => heard(n, e.at)) });
  if (!e.header) return rejectUpdate(t, e.nodeId, null, e.error?.code ?? 'BAD_MESSAGE', e.error?.message ?? 'unreadable frame');
  const header = e.header;
  if (header.kind === FrameKind.Model) return rejectUpdate(t, e.nodeId, header, 'BAD_REQUEST', 'agents may not send model frames');
  const round = t.state.round;
  // While a round is being aggregated or committed its set of updates is fixed: anything arriving is too late.
  const open = round?.stage === 'collecting' ? round.open : null;
  try {
    admitUpdate(open, t.state.session?.id ?? null, e.nodeId, header);
  } catch (error) {
    const code = error instanceof HyperGpuError ? error.code : 'BAD_MESSAGE';
    return rejectUpdate(t, e.nodeId, header, code, error instanceof Error ? error.message : String(error));
  }
  const session = t.state.durable.sessions.get(t.state.session!.id)!;
  if (header.paramCount !== session.paramCount) {
    return rejectUpdate(t, e.nodeId, header, 'PARAM_COUNT', `update has ${header.paramCount} parameters, model ${session.config.model} has ${session.paramCount}`);
  }
  t.emit({ type: 'ingest', nodeId: e.nodeId, frame: e.frame, header });
}

/** The payload is in its slot and was inspected in one pass: accept it, or release the slot and refuse it. */
export function onUpdateIngested(t: Transition, e: Extract<EngineEvent, { type: 'update-ingested' }>): void {
  const round = t.state.round;
  const session = t.state.session && t.state.durable.sessions.get(t.state.session.id);
  if (!round || round.stage !== 'collecting' || round.open.round !== e.header.round || !session) {
    t.emit({ type: 'release-slots', slots: [e.slot] });
    return rejectUpdate(t, e.nodeId, e.header, 'STALE_ROUND', `round ${e.header.round} stopped collecting while the update was copied`);
  }
  const norm = Math.sqrt(e.stats.sumSquares);
  const live = t.state.session!;
  const a = round.open.assignments.get(e.nodeId);
  const shard = a ? `${a.epoch}:${a.shardStart}:${a.shardCount}` : null;
  // The relative screen (against the median of recently accepted norms) catches scaled-up updates. Late in
  // training the median is small and a batch with a few hard samples honestly goes well past it, so an update
  // over the clipping limit is accepted and counts as if it were that long; only one far past it is refused.
  // A refused shard goes back to the cursor and returns with the same samples, so refusing it every time would
  // stall the session (seen in a 30-minute soak when the screen refused at 10x: every round refused from round
  // ~5,300 on): a shard is refused against the relative limit once, and its next update is refused only over the
  // session's absolute limit (still clipped).
  const waived = shard !== null && live.normRefusedShards?.has(shard) === true;
  const screen = normScreen(session.config.maxUpdateNorm, live.norms, t.state.options.normRatio, waived);
  if (!(norm <= screen.refuseAt)) {
    t.emit({ type: 'release-slots', slots: [e.slot] });
    if (shard !== null && screen.refuseAt < session.config.maxUpdateNorm) t.setSession({ normRefusedShards: rememberRefusedShard(live.normRefusedShards, shard) });
    return rejectUpdate(t, e.nodeId, e.header, 'ABSURD_NORM', `update norm ${norm.toExponential(3)} exceeds the limit ${screen.refuseAt.toExponential(3)} (${screen.refuseWhy})`);
  }
  const clipTo = screen.clipAt !== null && norm > screen.clipAt ? screen.clipAt : undefined;
  if (waived) {
    const rest = new Set(live.normRefusedShards);
    rest.delete(shard!);
    t.setSession({ normRefusedShards: rest });
    const counted = clipTo === undefined ? '' : `, counted clipped to ${clipTo.toExponential(3)}`;
    t.log('info', `round ${e.header.round}: shard ${shard} refused once against the relative norm limit is accepted at norm ${norm.toExponential(3)} (within the session limit ${session.config.maxUpdateNorm})${counted}`);
  }
  if (clipTo !== undefined) logClipped(t, e.nodeId, e.header.round, norm, clipTo, screen);
  const open = acceptUpdate(round.open, {
    nodeId: e.nodeId,
    attempt: e.header.attempt,
    samples: e.header.sampleCount,
    trainLoss: e.header.trainLoss,
    checksum: e.header.checksum,
    receivedAt: t.at,
    slot: e.slot,
    norm,
    ...(clipTo === undefined ? {} : { clipTo }),
  });
  t.setRound({ open });
  // The window holds the norms as they were, clipped ones included (the 90th percentile must see the heavy tail),
  // but a waived update enters at most at the limit it would have been refused over: refusing a shard on purpose
  // must not be a way to push a huge norm into the reference.
  const windowNorm = waived ? Math.min(norm, normScreen(session.config.maxUpdateNorm, live.norms, t.state.options.normRatio).refuseAt) : norm;
  t.setSession({ arrivals: keepRecent(t.state.session!.arrivals, t.at - open.openedAt), norms: keepRecent(t.state.session!.norms, windowNorm) });
  t.set({ pool: updateNode(t.state.pool, e.nodeId, (n) => delivered(n, e.header.round, e.header.sampleCount, t.at, FRAME_HEADER_BYTES + 4 * e.header.paramCount)) });
  t.emit({ type: 'send', nodeId: e.nodeId, message: { v: 1, type: 'accepted', round: e.header.round, samples: e.header.sampleCount, ...(clipTo === undefined ? {} : { clippedTo: clipTo }) } });
  t.publishNode(e.nodeId);
  checkRoundProgress(t);
}

/**
 * A clipped update is logged at once when it is the session's first, and then counted per node and summed up once a
 * minute (flushClips: here, from the sweep, and when the session ends): an honest heavy tail clips a few updates
 * a second, and a line each would bury everything else.
 */
function logClipped(t: Transition, nodeId: number, round: number, norm: number, clipTo: number, screen: NormScreen): void {
  const log = t.state.session!.clipLog;
  if (!log) {
    t.log('info', `round ${round}: the update of node #${nodeId} (norm ${norm.toExponential(3)}) counts clipped to ${clipTo.toExponential(3)} (${screen.clipWhy}); its samples are credited. An update over ${screen.refuseAt.toExponential(3)} (${screen.refuseWhy}) is refused. Later clips are summed up once a minute.`);
    t.setSession({ clipLog: { count: 0, since: t.at, byNode: new Map(), why: screen.clipWhy } });
    return;
  }
  const byNode = new Map(log.byNode);
  byNode.set(nodeId, (byNode.get(nodeId) ?? 0) + 1);
  t.setSession({ clipLog: { count: log.count + 1, since: log.since, byNode, why: screen.clipWhy } });
  if (t.at - log.since >= CLIP_LOG_INTERVAL_MS) flushClips(t);
}

/** Logs the clips counted since the last summary, the nodes with the most first, and starts counting afresh. */
export function flushClips(t: Transition, dueOnly = false): void {
  const log = t.state.session?.clipLog;
  if (!log || log.count === 0 || (dueOnly && t.at - log.since < CLIP_LOG_INTERVAL_MS)) return;
  const nodes = [...log.byNode].sort((a, b) => b[1] - a[1]);
  const top = nodes.slice(0, 3).map(([id, n]) => `node #${id}: ${n}`).join(', ');
  const more = nodes.length > 3 ? `, ${nodes.length - 3} more node${nodes.length === 4 ? '' : 's'}` : '';
  t.log('info', `${log.count} update${log.count === 1 ? '' : 's'} in the last ${Math.round((t.at - log.since) / 1000)} s counted clipped to the relative norm limit (${log.why}, at the last); accepted and credited (${top}${more})`);
  t.setSession({ clipLog: { count: 0, since: t.at, byNode: new Map(), why: log.why } });
}

/** Closes the round when everyone assigned has answered, or arms the straggler cut-off once a quorum has. */
export function checkRoundProgress(t: Transition): void {
  const round = t.state.round;
  if (!round || round.stage !== 'collecting') return;
  if (isRoundComplete(round.open)) return closeCollecting(t, 'all assigned nodes reported');
  if (round.stragglerArmed) return;
  const delivered = round.open.accepted.size;
  const assigned = round.open.assignments.size - round.open.failed.size;
  const elapsed = t.at - round.open.openedAt;
  const quorumGrace = stragglerCutoffMs(assigned, delivered, elapsed, deadlinePolicy(t.state));
  if (quorumGrace === null) return;
  // Nodes that answer instantly (sybils, or junk producers) make the quorum fast and would shrink the grace
  // until every honest node misses the cut-off and is benched. The cut-off never comes before most recent
  // updates used to arrive (the 75th percentile of recent arrival times): a minority cannot move that.
  const typical = arrivalQuantile(t.state.session!.arrivals, 0.75);
  const grace = typical === null ? quorumGrace : Math.max(quorumGrace, Math.round(typical - elapsed + deadlinePolicy(t.state).graceFloorMs));
  t.setRound({ stragglerArmed: true });
  t.emit({ type: 'set-timer', timer: 'straggler', delayMs: grace, round: round.open.round });
}

export function onRoundTimer(t: Transition, e: Extract<EngineEvent, { type: 'timer-fired' }>): void {
  const round = t.state.round;
  if (!round || round.stage !== 'collecting' || round.open.round !== e.round) return;
  closeCollecting(t, e.timer === 'straggler' ? `straggler cut-off after the grace period` : 'deadline reached');
}

/** A node assigned in the open round failed or left: its shard goes back, and the round may be complete now. */
export function dropFromRound(t: Transition, nodeId: number, reason: string): void {
  const round = t.state.round;
  if (!round || round.stage !== 'collecting') return;
  const open = dropNode(round.open, nodeId, reason);
  if (open === round.open) return;
  t.setRound({ open });
  checkRoundProgress(t);
}

/** Stops collecting: decides what the round amounts to, tells the missing nodes, and starts aggregating. */
function closeCollecting(t: Transition, why: string): void {
  flushRejections(t);
  const round = t.state.round!;
  const live = t.state.session!;
  const session = t.state.durable.sessions.get(live.id)!;
  t.emit({ type: 'cancel-timer', timer: 'deadline' });
  t.emit({ type: 'cancel-timer', timer: 'straggler' });
  const outcome = closeRound(round.open, live.cursor, session.config, t.at);
  const pool = new Map(t.state.pool);
  for (const { nodeId, reason, refused } of outcome.missing) {
    const node = pool.get(nodeId);
    // A refused node was told why when its update was refused, and it answered: no cancel, no missed round.
    if (!node || node.connection === null || refused) continue;
    t.emit({ type: 'send', nodeId, message: { v: 1, type: 'cancel', round: round.open.round, reason } });
    const miss = missedRound(node, round.open.round, reason, t.at);
    changeNode(pool, nodeId, () => miss.node);
    if (miss.benched) {
      t.log('warn', `node ${node.name} (#${nodeId}) ${miss.benched.why}`);
      t.timeline('node-benched', `${node.name} ${miss.benched.why}`, nodeId, { rounds: miss.benched.rounds });
    }
    t.publishNode(nodeId);
  }
  t.set({ pool });
  t.setSession({ cursor: outcome.cursor });
  t.setRound({ closedBecause: why, outcome });
  if (outcome.apply) {
    t.setRound({ stage: 'aggregating' });
    const plan = strategyFor(session.config).aggregation(outcome.accepted.map((u) => ({ nodeId: u.nodeId, slot: u.slot, samples: u.samples, norm: u.norm ?? 0, ...(u.clipTo === undefined ? {} : { clipTo: u.clipTo }) })));
    // Kept for the ledger: which applied updates counted scaled down, and by how much.
    if (plan.scales) t.setRound({ scales: new Map(outcome.accepted.flatMap((u, i) => (plan.scales![i] < 1 ? [[u.nodeId, plan.scales![i]] as const] : []))) });
    t.emit({ type: 'aggregate', sessionId: session.id, round: round.open.round, plan });
    return;
  }
  t.emit({ type: 'release-slots', slots: outcome.accepted.map((u) => u.slot) });
  commitRound(t, false);
}

export function onAggregationDone(t: Transition, e: Extract<EngineEvent, { type: 'aggregation-done' }>): void {
  const round = t.state.round;
  if (!round || round.stage !== 'aggregating' || round.open.round !== e.round) return;
  const accepted = round.outcome!.accepted;
  t.emit({ type: 'release-slots', slots: accepted.map((u) => u.slot) });
  t.setRound({ outlierScores: recordOutlierScores(t, e.round, accepted, e.distances) });
  commitRound(t, true);
}

function commitRound(t: Transition, withUpdate: boolean): void {
  const round = t.state.round!;
  const live = t.state.session!;
  const session = t.state.durable.sessions.get(live.id)!;
  // Overlap's reservations are not handed out as far as the record goes (lookahead.ts): a restart hands them out again.
  const outcome = { ...round.outcome!, cursor: durableCursor(round.outcome!.cursor, live.reserved) };
  const records = roundRecords({ session, open: round.open, outcome, closedAt: t.at, recent: live.recent, since: t.state.startedAt, outlierScores: round.outlierScores, scales: round.scales });
  const snapshot = committedSnapshot(session, records.events, {
    lastTestAccuracy: live.lastTestAccuracy,
    lastTestLoss: live.lastTestLoss,
    lastRoundDurationMs: records.metric.roundDurationMs,
    samplesPerSecond: records.metric.samplesPerSecond,
  });
  t.setRound({ stage: 'committing' });
  t.emit({
    type: 'commit-round',
    sessionId: session.id,
    round: round.open.round,
    journal: withUpdate ? { modelVersion: records.summary.modelVersion, samples: records.summary.samples } : null,
    summary: records.summary,
    contributions: records.contributions,
    metric: records.metric,
    session: snapshot,
    events: records.events,
  });
}

/** Returns every shard of the open round and drops its updates (recorded with why): shutdown, stop, failure. */
export function cancelRound(t: Transition, reason: string): void {
  flushRejections(t);
  const round = t.state.round;
  const live = t.state.session;
  if (!round || !live) return;
  t.emit({ type: 'cancel-timer', timer: 'deadline' });
  t.emit({ type: 'cancel-timer', timer: 'straggler' });
  const open = round.open;
  // Slots are released once aggregation is done; before that they are still held.
  if (round.stage !== 'committing') t.emit({ type: 'release-slots', slots: [...open.accepted.values()].map((u) => u.slot) });
  for (const update of open.accepted.values()) {
    const events: CommittedEvent[] = [{ kind: 'node-credited', sessionId: live.id, round: open.round, nodeId: update.nodeId, status: 'rejected', samples: 0 }];
    t.commit(events);
    t.emit({
      type: 'record-rejection',
      record: {
        sessionId: live.id,
        round: open.round,
        nodeId: update.nodeId,
        attempt: update.attempt,
        samples: update.samples,
        epoch: 0,
        shardStart: 0,
        shardCount: 0,
        checksum: update.checksum,
        trainLoss: Number.isFinite(update.trainLoss) ? update.trainLoss : 0,
        status: 'rejected',
        reason: reason.includes(':') ? reason : `CANCELLED: round ${open.round} was cancelled: ${reason}`,
        receivedAt: update.receivedAt,
      },
      events,
    });
  }
  const pool = new Map(t.state.pool);
  for (const nodeId of open.assignments.keys()) {
    const node = pool.get(nodeId);
    if (!node) continue;
    if (node.connection !== null && round.stage === 'collecting') t.emit({ type: 'send', nodeId, message: { v: 1, type: 'cancel', round: open.round, reason } });
    changeNode(pool, nodeId, (n) => ({ ...(n.status === 'training' ? setStatus(n, 'idle', reason, t.at) : n), assignedAt: null }));
    t.publishNode(nodeId);
  }
  t.set({ pool });
  // Every shard of the round goes back. Once collecting stopped, the live cursor already took back the
  // missing ones (and, for a round below quorum, the accepted ones too); the rest go back now.
  const shardOf = (nodeId: number) => {
    const a = open.assignments.get(nodeId)!;
    return { epoch: a.epoch, start: a.shardStart, count: a.shardCount };
  };
  const outcome = round.outcome;
  const back = outcome ? (outcome.apply ? outcome.accepted.map((u) => shardOf(u.nodeId)) : []) : [...open.assignments.keys()].map(shardOf);
  back.sort((a, b) => a.epoch - b.epoch || a.start - b.start);
  const cursor = back.length > 0 ? returnShards(live.cursor, back) : live.cursor;
  // Overlap's reservations go back too: the next open decides afresh who trains what.
  t.setSession({ cursor: live.reserved ? releaseAll(cursor, live.reserved) : cursor, reserved: undefined });
  t.set({ round: null });
}

/** The connection closed, the agent said goodbye, or it went silent. Events of replaced connections are stale. */
export function onNodeLost(t: Transition, e: { nodeId: number; connection: number; reason: string; left: boolean }): void {
  const node = t.state.pool.get(e.nodeId);
  if (!node || node.connection !== e.connection) return;
  const silentForMs = t.at - node.lastHeartbeatAt;
  t.set({ pool: updateNode(t.state.pool, e.nodeId, (n) => disconnect(n, e.left, e.reason, t.at)) });
  const verb = e.left ? 'left' : 'failed';
  t.log(e.left ? 'info' : 'warn', `node ${node.name} (#${e.nodeId}) ${verb}: ${e.reason}`);
  t.timeline(e.left ? 'node-left' : 'node-failed', `${node.name} ${verb}: ${e.reason}`, e.nodeId, { silentForMs });
  t.publishNode(e.nodeId);
  dropFromRound(t, e.nodeId, e.reason);
  // Its overlap reservation, if any, stays reserved until the next round opens without it (lookahead.ts): only
  // opens and cancels change reservations, so a commit in flight always records them as not handed out.
}

/** The close effect for a connection, used when the engine itself drops a node (silent, replaced). */
export function closeConnection(t: Transition, nodeId: number, connection: number, code: keyof typeof CLOSE_CODES, reason: string): void {
  t.emit({ type: 'close', nodeId, connection, code: CLOSE_CODES[code], reason });
}
