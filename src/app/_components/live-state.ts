// The dashboard's local picture of the coordinator: built from the first `snapshot` message of the
// live.dashboard subscription, then kept current by applying each event. Pure: no React, no clocks
// (the receive time comes in with the action), so it can be tested by feeding messages.
import type { LogLine, StatusSnapshot } from '../../server/core/events';
import type { LiveMessage } from '../../server/api/dto';
import type { MetricPoint, NodeSnapshot, SessionEvent } from '../../server/core/types';

export const MAX_METRICS = 20_000;
export const MAX_LOGS = 200;
export const MAX_TIMELINE = 300;

export interface LiveState {
  /** False until the first snapshot arrives. */
  ready: boolean;
  status: StatusSnapshot | null;
  /** Nodes by id, in arrival order. */
  nodes: NodeSnapshot[];
  /** Metrics of one session (metricsSessionId), ordered by round, one per round. */
  metrics: MetricPoint[];
  metricsSessionId: number | null;
  /** Newest last. */
  logs: LogLine[];
  /** The session timeline of timelineSessionId (joins, failures, restarts...), oldest first, capped. */
  timeline: SessionEvent[];
  timelineSessionId: number | null;
  /** Server clock minus browser clock (ms), so "ago" times use the server's notion of now. */
  clockOffsetMs: number;
  /** Browser time of the last message. */
  lastMessageAt: number;
}

export const initialLiveState: LiveState = {
  ready: false,
  status: null,
  nodes: [],
  metrics: [],
  metricsSessionId: null,
  logs: [],
  timeline: [],
  timelineSessionId: null,
  clockOffsetMs: 0,
  lastMessageAt: 0,
};

export type LiveAction = { type: 'message'; message: LiveMessage; receivedAt: number } | { type: 'reset' };

export function liveReducer(state: LiveState, action: LiveAction): LiveState {
  if (action.type === 'reset') return initialLiveState;
  const { message, receivedAt } = action;
  switch (message.type) {
    case 'snapshot': {
      // A snapshot replaces everything: it comes first on every (re)subscription.
      const { status, nodes, metrics, logs, timeline } = message.snapshot;
      return {
        ready: true,
        status,
        nodes: [...nodes],
        metrics: normalizeMetrics(metrics),
        metricsSessionId: status.sessionId,
        logs: logs.slice(-MAX_LOGS),
        timeline: normalizeTimeline(
          status.sessionId === null ? (timeline ?? []) : (timeline ?? []).filter((e) => e.sessionId === status.sessionId),
        ),
        timelineSessionId: status.sessionId,
        clockOffsetMs: status.now - receivedAt,
        lastMessageAt: receivedAt,
      };
    }
    case 'status': {
      const status = message.status;
      // A different session id means a new session began: its charts start empty. (Unless a metric of
      // an even newer session already arrived ahead of this status.)
      const keep = keepForSession(status.sessionId, state.metricsSessionId);
      const keepTimeline = keepForSession(status.sessionId, state.timelineSessionId);
      return {
        ...state,
        status,
        metrics: keep ? state.metrics : [],
        metricsSessionId: keep ? state.metricsSessionId : status.sessionId,
        timeline: keepTimeline ? state.timeline : [],
        timelineSessionId: keepTimeline ? state.timelineSessionId : status.sessionId,
        clockOffsetMs: status.now - receivedAt,
        lastMessageAt: receivedAt,
      };
    }
    case 'metric': {
      const current = state.metricsSessionId;
      if (message.sessionId === current) {
        return { ...state, metrics: upsertMetric(state.metrics, message.metric), lastMessageAt: receivedAt };
      }
      // The first metric of a newer session may overtake its status event.
      if (current === null || message.sessionId > current) {
        return { ...state, metrics: [message.metric], metricsSessionId: message.sessionId, lastMessageAt: receivedAt };
      }
      // A late metric of an older session is not this chart's business.
      return { ...state, lastMessageAt: receivedAt };
    }
    case 'node': {
      const node = message.node;
      const index = state.nodes.findIndex((n) => n.id === node.id);
      const nodes = index === -1 ? [...state.nodes, node] : state.nodes.map((n, i) => (i === index ? node : n));
      return { ...state, nodes, lastMessageAt: receivedAt };
    }
    case 'log': {
      const logs = state.logs.length >= MAX_LOGS ? [...state.logs.slice(1 - MAX_LOGS), message.line] : [...state.logs, message.line];
      return { ...state, logs, lastMessageAt: receivedAt };
    }
    case 'timeline': {
      const event = message.event;
      const current = state.timelineSessionId;
      if (event.sessionId === current) {
        return { ...state, timeline: insertTimelineEvent(state.timeline, event), lastMessageAt: receivedAt };
      }
      // A new session's first events ('session-started') are published just before its status: they open
      // the new session's timeline rather than being dropped.
      if (current === null || event.sessionId > current) {
        return { ...state, timeline: [event], timelineSessionId: event.sessionId, lastMessageAt: receivedAt };
      }
      // An event of an older session is not this timeline's business.
      return { ...state, lastMessageAt: receivedAt };
    }
    default:
      return state;
  }
}

/**
 * Whether what was kept for `keptSessionId` stays when a status names `statusSessionId`: the same session, or
 * a newer one whose events overtook this (older) status.
 */
function keepForSession(statusSessionId: number | null, keptSessionId: number | null): boolean {
  return statusSessionId === keptSessionId || (statusSessionId !== null && keptSessionId !== null && keptSessionId > statusSessionId);
}

/** Identity of a timeline event (they carry no id): the same event can come in the snapshot and as an event. */
function timelineKey(e: SessionEvent): string {
  return `${e.sessionId}|${e.at}|${e.kind}|${e.round}|${e.nodeId ?? ''}|${e.message}`;
}

/** Oldest first (stable for equal times), without repeats, capped to the newest MAX_TIMELINE. */
function normalizeTimeline(events: SessionEvent[]): SessionEvent[] {
  const seen = new Set<string>();
  const unique: SessionEvent[] = [];
  for (const e of events) {
    const key = timelineKey(e);
    if (seen.has(key)) continue;
    seen.add(key);
    unique.push(e);
  }
  const sorted = unique.map((e, i) => ({ e, i })).sort((a, b) => a.e.at - b.e.at || a.i - b.i).map(({ e }) => e);
  return sorted.length > MAX_TIMELINE ? sorted.slice(-MAX_TIMELINE) : sorted;
}

function insertTimelineEvent(timeline: SessionEvent[], event: SessionEvent): SessionEvent[] {
  // A repeat: the subscription may deliver an event that its snapshot already held.
  const key = timelineKey(event);
  if (timeline.some((e) => e.at === event.at && timelineKey(e) === key)) return timeline;
  let next: SessionEvent[];
  const last = timeline[timeline.length - 1];
  if (!last || event.at >= last.at) {
    next = [...timeline, event];
  } else {
    // Out of order: after every event at or before its time.
    let index = timeline.length;
    while (index > 0 && timeline[index - 1].at > event.at) index--;
    next = timeline.slice();
    next.splice(index, 0, event);
  }
  return next.length > MAX_TIMELINE ? next.slice(-MAX_TIMELINE) : next;
}

/** Rounds at which the coordinator restarted (chart markers), ascending, without repeats. */
export function restartRounds(timeline: SessionEvent[]): number[] {
  const rounds = new Set<number>();
  for (const e of timeline) if (e.kind === 'coordinator-restarted') rounds.add(e.round);
  return [...rounds].sort((a, b) => a - b);
}

/** Sorted by round, one entry per round (the later report of a round wins), capped. */
function normalizeMetrics(metrics: MetricPoint[]): MetricPoint[] {
  const byRound = new Map<number, MetricPoint>();
  for (const m of metrics) byRound.set(m.round, m);
  const sorted = [...byRound.values()].sort((a, b) => a.round - b.round);
  return sorted.length > MAX_METRICS ? sorted.slice(-MAX_METRICS) : sorted;
}

function upsertMetric(metrics: MetricPoint[], metric: MetricPoint): MetricPoint[] {
  const last = metrics[metrics.length - 1];
  if (!last || metric.round > last.round) {
    const next = metrics.length >= MAX_METRICS ? metrics.slice(1 - MAX_METRICS) : metrics.slice();
    next.push(metric);
    return next;
  }
  // Out of order or a repeat (an event also present in the snapshot): replace or insert in place.
  const index = metrics.findIndex((m) => m.round >= metric.round);
  const next = metrics.slice();
  if (next[index].round === metric.round) next[index] = metric;
  else next.splice(index, 0, metric);
  return next;
}

// ---- derived figures -------------------------------------------------------------------------------

export interface LatestFigures {
  round: number;
  modelVersion: number;
  testAccuracy: number | null;
  testLoss: number | null;
  trainLoss: number | null;
  samplesPerSecond: number | null;
  roundDurationMs: number | null;
  totalSamples: number | null;
  nodesActive: number;
  nodesTotal: number;
  evaluatedRounds: number;
}

export function latestFigures(state: LiveState): LatestFigures {
  const { status, metrics } = state;
  const session = status?.session ?? null;
  const last = metrics[metrics.length - 1] ?? null;
  let lastEval: MetricPoint | null = null;
  let evaluatedRounds = 0;
  for (const m of metrics) {
    if (m.testAccuracy !== null) {
      evaluatedRounds++;
      lastEval = m;
    }
  }
  return {
    // The status carries the round in progress; a metric event may be newer when status events lag.
    round: Math.max(status?.round ?? 0, session?.round ?? 0, last?.round ?? 0),
    modelVersion: Math.max(status?.modelVersion ?? 0, session?.modelVersion ?? 0),
    testAccuracy: lastEval?.testAccuracy ?? session?.lastTestAccuracy ?? null,
    testLoss: lastEval?.testLoss ?? session?.lastTestLoss ?? null,
    trainLoss: last?.trainLoss ?? null,
    samplesPerSecond: last?.samplesPerSecond ?? session?.samplesPerSecond ?? null,
    roundDurationMs: last?.roundDurationMs ?? session?.lastRoundDurationMs ?? null,
    totalSamples: session || last ? Math.max(last?.totalSamples ?? 0, session?.totalSamples ?? 0) : null,
    nodesActive: status?.nodes.active ?? state.nodes.filter((n) => n.status === 'idle' || n.status === 'training').length,
    nodesTotal: status?.nodes.total ?? state.nodes.length,
    evaluatedRounds,
  };
}

const NODE_ORDER: Record<NodeSnapshot['status'], number> = { training: 0, idle: 1, connecting: 2, failed: 3, left: 4 };

/** Working nodes first, then by name. */
export function sortNodes(nodes: NodeSnapshot[]): NodeSnapshot[] {
  return [...nodes].sort((a, b) => NODE_ORDER[a.status] - NODE_ORDER[b.status] || a.name.localeCompare(b.name) || a.id - b.id);
}
