// The node pool decides *who*: which nodes are known and connected, their status, how fast they are, who is
// benched for missing cut-offs, and who gets work in the next round. Pure and immutable: every change
// returns a new pool; time comes in as arguments.
import type { NodeCapabilities, NodeSnapshot, NodeStatus } from '../types';
import { NO_CREDIT, type NodeCredit } from './committed';
import { initialStats, isSuspect, recordGap, type DetectorPolicy, type HeartbeatStats } from './failure-detector';

export interface PoolNode {
  id: number;
  name: string;
  status: NodeStatus;
  statusReason: string | null;
  statusChangedAt: number;
  capabilities: NodeCapabilities;
  joinedAt: number;
  lastHeartbeatAt: number;
  /** The rhythm of its messages, for the failure detector. */
  heartbeats: HeartbeatStats;
  /** The live connection (runner-assigned id); null once it closed. Stale connections' events are ignored. */
  connection: number | null;
  /** Session the agent has loaded its model and data for; it gets work only for that session. */
  readySession: number | null;
  /** When its current assignment went out (null: none outstanding); with overlap, when it began working on it. */
  assignedAt: number | null;
  /** When its last update was accepted (overlap: a node trains its next shard from then on). */
  deliveredAt?: number;
  currentRound: number | null;
  /**
   * Measured training speed (samples/s): the agent's calibration at join, then every delivered round (assignment
   * out to update in, less the link's round trip), smoothed.
   */
  samplesPerSecond: number;
  /** Whether samplesPerSecond comes from a delivered round (the coordinator's measurement), not only the claim. */
  speedMeasured: boolean;
  /** Round-trip time of its link (ms, smoothed), from the gateway's WebSocket pings; null until measured. */
  rttMs: number | null;
  /** Upload bandwidth (bytes/s, smoothed): an update frame's size over the time its bytes took to arrive. */
  uploadBytesPerSecond: number | null;
  /** Distance of its last scored update from the aggregate, relative to the round's median distance. */
  outlierScore: number | null;
  /** Time computing over wall time, as the agent measured it over its recent rounds and reported (absent: not yet). */
  computeShare?: number | null;
  /** Rounds in a row this node was assigned, stayed connected, and did not deliver in time. */
  missedStreak: number;
  /** Not assigned work before this round (a chronically slow node must not slow every round). */
  benchedUntilRound: number;
  /** How many times in a row it was benched: each time the bench lasts twice as long. */
  benchLevel: number;
  /** Rejected updates in the current window (offender detection). */
  rejectWindowStart: number;
  rejectCount: number;
  /** Refused (disconnected, and its hello turned away) until then; 0: not banned. */
  bannedUntil: number;
  /** Kicked by the operator from this session: it may reconnect but gets no work (and no credit) in it. */
  kickedFromSession?: number;
}

/** A node with more rejected updates than this within the window is disconnected and refused for a while. */
export const OFFENDER_LIMIT = 100;
export const OFFENDER_WINDOW_MS = 10_000;
export const BAN_MS = 60_000;

/**
 * Counts a rejected update against the node. Returns the node and, when this one crossed the limit, the ban.
 * Honest nodes see a few rejections (a late update, a round cancelled under them); a client that sends junk
 * in a loop sees hundreds, and refusing it must cost us less than sending costs it.
 */
export function countRejection(node: PoolNode, at: number): { node: PoolNode; banned: boolean } {
  const fresh = at - node.rejectWindowStart > OFFENDER_WINDOW_MS;
  const rejectCount = (fresh ? 0 : node.rejectCount) + 1;
  const next = { ...node, rejectWindowStart: fresh ? at : node.rejectWindowStart, rejectCount };
  if (rejectCount <= OFFENDER_LIMIT) return { node: next, banned: false };
  return { node: { ...next, bannedUntil: at + BAN_MS, rejectCount: 0, rejectWindowStart: at }, banned: true };
}

export function isBanned(pool: NodePool, nodeId: number, at: number): number | null {
  const until = pool.get(nodeId)?.bannedUntil ?? 0;
  return until > at ? until : null;
}

export type NodePool = ReadonlyMap<number, PoolNode>;

export const EMPTY_POOL: NodePool = new Map();

function put(pool: NodePool, node: PoolNode): NodePool {
  const next = new Map(pool);
  next.set(node.id, node);
  return next;
}

export function updateNode(pool: NodePool, id: number, change: (node: PoolNode) => PoolNode): NodePool {
  const node = pool.get(id);
  return node ? put(pool, change(node)) : pool;
}

/** Changes a node in a pool being built within one step (copied once, however many nodes change). */
export function changeNode(draft: Map<number, PoolNode>, id: number, change: (node: PoolNode) => PoolNode): void {
  const node = draft.get(id);
  if (node) draft.set(id, change(node));
}

/** (Re)registers a node on a new connection. A node coming back keeps its speed estimate and its bench. */
export function registerNode(
  pool: NodePool,
  input: { id: number; name: string; capabilities: NodeCapabilities; connection: number; at: number; heartbeatMs: number },
): { pool: NodePool; previous: PoolNode | undefined } {
  const previous = pool.get(input.id);
  const node: PoolNode = {
    id: input.id,
    name: input.name,
    status: 'idle',
    statusReason: previous ? 'reconnected' : 'joined',
    statusChangedAt: input.at,
    capabilities: input.capabilities,
    joinedAt: input.at,
    lastHeartbeatAt: input.at,
    heartbeats: initialStats(input.heartbeatMs),
    connection: input.connection,
    readySession: null,
    assignedAt: null,
    currentRound: null,
    samplesPerSecond: previous?.samplesPerSecond || input.capabilities.samplesPerSecond,
    speedMeasured: previous?.speedMeasured ?? false,
    rttMs: previous?.rttMs ?? null,
    uploadBytesPerSecond: previous?.uploadBytesPerSecond ?? null,
    outlierScore: previous?.outlierScore ?? null,
    missedStreak: 0,
    benchedUntilRound: previous?.benchedUntilRound ?? 0,
    benchLevel: previous?.benchLevel ?? 0,
    rejectWindowStart: previous?.rejectWindowStart ?? input.at,
    rejectCount: previous?.rejectCount ?? 0,
    bannedUntil: previous?.bannedUntil ?? 0,
    ...(previous?.kickedFromSession !== undefined ? { kickedFromSession: previous.kickedFromSession } : {}),
  };
  return { pool: put(pool, node), previous };
}

export function setStatus(node: PoolNode, status: NodeStatus, reason: string, at: number): PoolNode {
  return {
    ...node,
    status,
    statusReason: reason,
    statusChangedAt: node.status !== status ? at : node.statusChangedAt,
    currentRound: status === 'training' ? node.currentRound : null,
  };
}

/** The connection closed, the agent left, or it went silent: it gets no more work until it registers again. */
export function disconnect(node: PoolNode, left: boolean, reason: string, at: number): PoolNode {
  return { ...setStatus(node, left ? 'left' : 'failed', reason, at), connection: null, readySession: null, assignedAt: null };
}

/** Nodes that may work in `round` of `sessionId`, benched ones left out unless every ready node is benched. */
export function selectForRound(pool: NodePool, sessionId: number, round: number): number[] {
  const ready = [...pool.values()].filter(
    (n) => n.connection !== null && n.readySession === sessionId && n.status !== 'failed' && n.status !== 'left',
  );
  const rested = ready.filter((n) => n.benchedUntilRound <= round);
  // Benching never stops training: if every ready node is benched, they all work.
  return (rested.length > 0 ? rested : ready).map((n) => n.id).sort((a, b) => a - b);
}

/** Its update for `round` was refused: idle again, no longer waited for, and not a miss (it answered). */
export function refusedRound(node: PoolNode, round: number, code: string, at: number): PoolNode {
  return { ...setStatus(node, 'idle', `update for round ${round} refused (${code})`, at), assignedAt: null };
}

export function assign(node: PoolNode, round: number, at: number): PoolNode {
  return { ...setStatus({ ...node, currentRound: round }, 'training', `round ${round}`, at), assignedAt: at, currentRound: round };
}

/**
 * A delivery on time: update the speed estimate and take one step back from probation. The round trip of its
 * link, and the update's upload at its measured rate, are taken off the round's duration: a distant node is not slower at training, and counting its latency as
 * slowness would shrink its share, which makes the latency a larger part of its round, which shrinks its share
 * again, down to the minimum (seen with a 120 ms link before this). At least half the duration is counted: the
 * round trip comes from the agent's own pongs, and an agent that delays them may look at most twice as fast.
 */
export function delivered(node: PoolNode, round: number, samples: number, at: number, frameBytes = 0): PoolNode {
  let samplesPerSecond = node.samplesPerSecond;
  const speedMeasured = node.speedMeasured;
  if (node.assignedAt !== null) {
    const durationMs = at - node.assignedAt;
    // The link's share of the round: its round trip, and the update's upload at the measured rate.
    const uploadMs = node.uploadBytesPerSecond ? (frameBytes * 1000) / node.uploadBytesPerSecond : 0;
    const computeMs = Math.max(durationMs - (node.rttMs ?? 0) - uploadMs, durationMs / 2);
    const rate = samples / Math.max(1e-3, computeMs / 1000);
    samplesPerSecond = samplesPerSecond > 0 ? 0.7 * samplesPerSecond + 0.3 * rate : rate;
  }
  return {
    ...setStatus(node, 'idle', `delivered round ${round}`, at),
    samplesPerSecond,
    speedMeasured: speedMeasured || node.assignedAt !== null,
    assignedAt: null,
    deliveredAt: at,
    missedStreak: 0,
    benchLevel: Math.max(0, node.benchLevel - 1),
  };
}

export interface MissOutcome {
  node: PoolNode;
  /** Set when this miss benched the node: for how many rounds, and why (for the log and the timeline). */
  benched: { rounds: number; why: string } | null;
}

/**
 * Three missed cut-offs in a row bench a node for 4 rounds; on probation afterwards, one more miss benches it
 * for twice as long (up to 64 rounds). Each delivery on time takes it one step back.
 */
export function missedRound(node: PoolNode, round: number, reason: string, at: number): MissOutcome {
  let next: PoolNode = { ...node, assignedAt: null, missedStreak: node.missedStreak + 1 };
  if (next.status === 'training') next = setStatus(next, 'idle', `missed round ${round}: ${reason}`, at);
  if (next.missedStreak < (next.benchLevel > 0 ? 1 : 3)) return { node: next, benched: null };
  const benchLevel = next.benchLevel + 1;
  const rounds = Math.min(64, 4 * 2 ** (benchLevel - 1));
  const benchedUntilRound = round + 1 + rounds;
  const why = `missed ${benchLevel > 1 ? 'its probation round' : '3 rounds in a row'}; benched for ${rounds} rounds (until round ${benchedUntilRound}), then tried again`;
  next = setStatus({ ...next, missedStreak: 0, benchLevel, benchedUntilRound }, 'idle', why, at);
  return { node: next, benched: { rounds, why } };
}

/** Weight of a new link measurement in the smoothed value (a few samples settle it; one outlier moves it little). */
const LINK_EWMA = 0.3;

/** A link measurement from the gateway (a ping's round trip, or an update frame's transfer). */
export function measuredLink(node: PoolNode, m: { rttMs?: number; uploadBytesPerSecond?: number }): PoolNode {
  const smooth = (old: number | null, x: number | undefined) =>
    x === undefined || !Number.isFinite(x) || x < 0 ? old : old === null ? x : (1 - LINK_EWMA) * old + LINK_EWMA * x;
  return { ...node, rttMs: smooth(node.rttMs, m.rttMs), uploadBytesPerSecond: smooth(node.uploadBytesPerSecond, m.uploadBytesPerSecond) };
}

/** Any message from the node: it is alive, and the gap since the last one teaches the detector its rhythm. */
export function heard(node: PoolNode, at: number): PoolNode {
  return { ...node, lastHeartbeatAt: at, heartbeats: recordGap(node.heartbeats, at - node.lastHeartbeatAt) };
}

/** Connected nodes whose silence the failure detector no longer believes (any traffic counts as a heartbeat). */
export function silentNodes(pool: NodePool, at: number, policy: DetectorPolicy): { id: number; silentForMs: number }[] {
  const silent: { id: number; silentForMs: number }[] = [];
  for (const node of pool.values()) {
    if (node.connection === null) continue;
    const silentForMs = at - node.lastHeartbeatAt;
    if (isSuspect(node.heartbeats, silentForMs, policy)) silent.push({ id: node.id, silentForMs });
  }
  return silent;
}

/** The coordinator itself was stalled for `ms`: nobody's silence during it is their fault. */
export function forgiveStall(pool: NodePool, ms: number): NodePool {
  const next = new Map(pool);
  for (const node of pool.values()) if (node.connection !== null) next.set(node.id, { ...node, lastHeartbeatAt: node.lastHeartbeatAt + ms });
  return next;
}

/** What the API and the dashboard see of a node: the pool's view plus the session's credit. */
export function toSnapshot(node: PoolNode, credit: NodeCredit = NO_CREDIT): NodeSnapshot {
  return {
    id: node.id,
    name: node.name,
    status: node.status,
    statusReason: node.statusReason,
    capabilities: node.capabilities,
    joinedAt: node.joinedAt,
    lastHeartbeatAt: node.lastHeartbeatAt,
    acceptedContributions: credit.acceptedContributions,
    rejectedContributions: credit.rejectedContributions,
    acceptedSamples: credit.acceptedSamples,
    forfeitedEpochs: [...(credit.forfeitedEpochs ?? [])],
    samplesPerSecond: node.samplesPerSecond,
    rttMs: node.rttMs,
    uploadBytesPerSecond: node.uploadBytesPerSecond,
    outlierScore: node.outlierScore,
    computeShare: node.computeShare ?? null,
    currentRound: node.currentRound,
    statusChangedAt: node.statusChangedAt,
  };
}
