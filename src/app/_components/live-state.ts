// The dashboard's local picture of the coordinator: built from the first `snapshot` message of the
// live.dashboard subscription, then kept current by applying each event. Pure: no React, no clocks
// (the receive time comes in with the action), so it can be tested by feeding messages.
import type { LogLine, StatusSnapshot } from '../../server/core/events';
import type { LiveMessage } from '../../server/api/routers/live';
import type { MetricPoint, NodeSnapshot } from '../../server/core/types';

export const MAX_METRICS = 20_000;
export const MAX_LOGS = 200;

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
      const { status, nodes, metrics, logs } = message.snapshot;
      return {
        ready: true,
        status,
        nodes: [...nodes],
        metrics: normalizeMetrics(metrics),
        metricsSessionId: status.sessionId,
        logs: logs.slice(-MAX_LOGS),
        clockOffsetMs: status.now - receivedAt,
        lastMessageAt: receivedAt,
      };
    }
    case 'status': {
      const status = message.status;
      // A different session id means a new session began: its charts start empty. (Unless a metric of
      // an even newer session already arrived ahead of this status.)
      const keep =
        status.sessionId === state.metricsSessionId ||
        (status.sessionId !== null && state.metricsSessionId !== null && state.metricsSessionId > status.sessionId);
      return {
        ...state,
        status,
        metrics: keep ? state.metrics : [],
        metricsSessionId: keep ? state.metricsSessionId : status.sessionId,
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
    default:
      return state;
  }
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
