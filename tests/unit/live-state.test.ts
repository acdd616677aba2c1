// The dashboard's reducer, fed messages as the live.dashboard subscription would deliver them: a snapshot,
// then events (status, metric, node, log, timeline). Pure: no React, no browser.
import { describe, expect, it } from 'vitest';
import type { LiveMessage } from '../../src/server/api/dto';
import type { DashboardSnapshot, LogLine, StatusSnapshot } from '../../src/server/core/events';
import type { MetricPoint, NodeSnapshot, SessionEvent, SessionEventKind } from '../../src/server/core/types';
import {
  initialLiveState,
  latestFigures,
  liveReducer,
  MAX_LOGS,
  MAX_METRICS,
  MAX_TIMELINE,
  restartRounds,
  sortNodes,
  type LiveState,
} from '../../src/app/_components/live-state';

const T0 = 1_800_000_000_000;

function status(over: Partial<StatusSnapshot> = {}): StatusSnapshot {
  return {
    state: 'running',
    sessionId: 1,
    round: 0,
    modelVersion: 0,
    nodes: { total: 0, active: 0, training: 0, failed: 0 },
    session: null,
    startedAt: T0,
    now: T0,
    ...over,
  };
}

function metric(round: number, over: Partial<MetricPoint> = {}): MetricPoint {
  return {
    round,
    at: T0 + round * 100,
    trainLoss: 2 / (round + 1),
    testLoss: null,
    testAccuracy: null,
    samples: 64,
    totalSamples: 64 * round,
    samplesPerSecond: 500,
    roundDurationMs: 100,
    nodes: 2,
    ...over,
  };
}

function node(id: number, over: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return {
    id,
    name: `node-${id}`,
    status: 'idle',
    statusReason: null,
    capabilities: { backend: 'cpu', device: 'x86', samplesPerSecond: 100, agentVersion: '0.1.0', hostname: 'h' },
    joinedAt: T0,
    lastHeartbeatAt: T0,
    acceptedContributions: 0,
    rejectedContributions: 0,
    acceptedSamples: 0,
    samplesPerSecond: 100,
    rttMs: null,
    uploadBytesPerSecond: null,
    outlierScore: null,
    currentRound: null,
    statusChangedAt: T0,
    ...over,
  };
}

function event(kind: SessionEventKind, at: number, over: Partial<SessionEvent> = {}): SessionEvent {
  return { sessionId: 1, at, round: 0, kind, message: `${kind} at ${at}`, nodeId: null, detail: null, ...over };
}

function log(message: string, at = T0): LogLine {
  return { at, level: 'info', message };
}

function snapshot(over: Partial<DashboardSnapshot> = {}): LiveMessage {
  return { type: 'snapshot', snapshot: { status: status(), nodes: [], metrics: [], logs: [], timeline: [], ...over } };
}

/** Applies messages in order, each received 10 ms after the previous one. */
function feed(messages: LiveMessage[], from: LiveState = initialLiveState, receivedAt = T0): LiveState {
  let state = from;
  messages.forEach((message, i) => {
    state = liveReducer(state, { type: 'message', message, receivedAt: receivedAt + i * 10 });
  });
  return state;
}

describe('liveReducer', () => {
  it('starts from a snapshot, then applies status, metric, node, log and timeline events', () => {
    let state = feed([
      snapshot({
        status: status({ round: 2, now: T0 + 5_000 }),
        nodes: [node(1)],
        metrics: [metric(2), metric(1)],
        logs: [log('hello')],
        timeline: [event('session-started', T0), event('node-joined', T0 + 1, { nodeId: 1 })],
      }),
    ]);
    expect(state.ready).toBe(true);
    expect(state.metrics.map((m) => m.round)).toEqual([1, 2]);
    expect(state.metricsSessionId).toBe(1);
    expect(state.timelineSessionId).toBe(1);
    expect(state.timeline.map((e) => e.kind)).toEqual(['session-started', 'node-joined']);
    expect(state.clockOffsetMs).toBe(5_000);

    state = feed(
      [
        { type: 'status', status: status({ round: 3, now: T0 + 7_000 }) },
        { type: 'metric', sessionId: 1, metric: metric(3) },
        { type: 'node', node: node(2, { status: 'training', currentRound: 3 }) },
        { type: 'node', node: node(1, { status: 'failed', statusChangedAt: T0 + 6_000 }) },
        { type: 'log', line: log('world') },
        { type: 'timeline', event: event('node-failed', T0 + 6_000, { nodeId: 1, round: 3, detail: { silentForMs: 12_000 } }) },
      ],
      state,
      T0 + 1_000,
    );
    expect(state.status?.round).toBe(3);
    expect(state.clockOffsetMs).toBe(6_000);
    expect(state.metrics.map((m) => m.round)).toEqual([1, 2, 3]);
    expect(state.nodes.map((n) => [n.id, n.status])).toEqual([
      [1, 'failed'],
      [2, 'training'],
    ]);
    expect(sortNodes(state.nodes).map((n) => n.id)).toEqual([2, 1]);
    expect(state.logs.map((l) => l.message)).toEqual(['hello', 'world']);
    expect(state.timeline.map((e) => e.kind)).toEqual(['session-started', 'node-joined', 'node-failed']);
    expect(state.timeline[2].detail).toEqual({ silentForMs: 12_000 });
    expect(state.lastMessageAt).toBe(T0 + 1_050);
    expect(latestFigures(state).round).toBe(3);
  });

  it('a new snapshot replaces everything (a resubscription)', () => {
    const before = feed([
      snapshot({ metrics: [metric(1), metric(2)], timeline: [event('session-started', T0)], logs: [log('a')] }),
    ]);
    const after = feed(
      [snapshot({ status: status({ sessionId: 2 }), metrics: [metric(1)], timeline: [], logs: [] })],
      before,
    );
    expect(after.metricsSessionId).toBe(2);
    expect(after.metrics).toHaveLength(1);
    expect(after.timeline).toEqual([]);
    expect(after.timelineSessionId).toBe(2);
    expect(after.logs).toEqual([]);
  });

  it('keeps only the snapshot timeline entries of the status session, oldest first', () => {
    const state = feed([
      snapshot({
        timeline: [
          event('node-joined', T0 + 20),
          event('session-started', T0 + 10),
          event('session-stopped', T0 + 5, { sessionId: 0 }),
          event('node-joined', T0 + 20), // a repeat
        ],
      }),
    ]);
    expect(state.timeline.map((e) => [e.kind, e.at])).toEqual([
      ['session-started', T0 + 10],
      ['node-joined', T0 + 20],
    ]);
  });

  it('a status of another session clears metrics and timeline; nodes and logs stay', () => {
    let state = feed([
      snapshot({
        nodes: [node(1)],
        metrics: [metric(1), metric(2)],
        logs: [log('a')],
        timeline: [event('session-started', T0), event('session-stopped', T0 + 50, { round: 2 })],
      }),
    ]);
    state = feed([{ type: 'status', status: status({ sessionId: 2, state: 'running' }) }], state);
    expect(state.metrics).toEqual([]);
    expect(state.metricsSessionId).toBe(2);
    expect(state.timeline).toEqual([]);
    expect(state.timelineSessionId).toBe(2);
    expect(state.nodes).toHaveLength(1);
    expect(state.logs).toHaveLength(1);

    // Back to no session at all (idle): nothing of session 2 remains either.
    state = feed(
      [
        { type: 'metric', sessionId: 2, metric: metric(1) },
        { type: 'timeline', event: event('session-started', T0 + 100, { sessionId: 2 }) },
        { type: 'status', status: status({ sessionId: null, state: 'idle' }) },
      ],
      state,
    );
    expect(state.metrics).toEqual([]);
    expect(state.timeline).toEqual([]);
  });

  it("a new session's first timeline events and metrics may overtake its status", () => {
    let state = feed([snapshot({ metrics: [metric(1)], timeline: [event('session-started', T0)] })]);
    // The coordinator records 'session-started' before it publishes the new status.
    state = feed(
      [
        { type: 'timeline', event: event('session-started', T0 + 1_000, { sessionId: 2 }) },
        { type: 'metric', sessionId: 2, metric: metric(1, { trainLoss: 9 }) },
        { type: 'status', status: status({ sessionId: 2 }) },
      ],
      state,
    );
    expect(state.timelineSessionId).toBe(2);
    expect(state.timeline.map((e) => [e.sessionId, e.kind])).toEqual([[2, 'session-started']]);
    expect(state.metricsSessionId).toBe(2);
    expect(state.metrics.map((m) => m.trainLoss)).toEqual([9]);

    // A late status of the older session does not wipe the newer session's views.
    state = feed([{ type: 'status', status: status({ sessionId: 1 }) }], state);
    expect(state.timelineSessionId).toBe(2);
    expect(state.timeline).toHaveLength(1);
    expect(state.metrics).toHaveLength(1);
  });

  it("ignores timeline events and metrics of an older session", () => {
    let state = feed([snapshot({ status: status({ sessionId: 3 }), metrics: [metric(1)], timeline: [event('session-started', T0, { sessionId: 3 })] })]);
    state = feed(
      [
        { type: 'timeline', event: event('node-failed', T0 + 5, { sessionId: 2 }) },
        { type: 'metric', sessionId: 2, metric: metric(7) },
      ],
      state,
    );
    expect(state.timeline.map((e) => e.sessionId)).toEqual([3]);
    expect(state.metrics.map((m) => m.round)).toEqual([1]);
  });

  it('timeline events that repeat the snapshot are not shown twice; late ones go in time order', () => {
    const started = event('session-started', T0);
    const joined = event('node-joined', T0 + 10, { nodeId: 1 });
    let state = feed([snapshot({ timeline: [started, joined] })]);
    state = feed(
      [
        { type: 'timeline', event: { ...joined } },
        { type: 'timeline', event: event('node-failed', T0 + 30, { nodeId: 1 }) },
        { type: 'timeline', event: event('node-joined', T0 + 20, { nodeId: 2 }) },
      ],
      state,
    );
    expect(state.timeline.map((e) => [e.kind, e.at])).toEqual([
      ['session-started', T0],
      ['node-joined', T0 + 10],
      ['node-joined', T0 + 20],
      ['node-failed', T0 + 30],
    ]);
  });

  it('orders out-of-order metrics by round, one per round, the later report winning', () => {
    let state = feed([snapshot({ metrics: [metric(1), metric(4)] })]);
    state = feed(
      [
        { type: 'metric', sessionId: 1, metric: metric(3) },
        { type: 'metric', sessionId: 1, metric: metric(2) },
        { type: 'metric', sessionId: 1, metric: metric(4, { testAccuracy: 0.9, testLoss: 0.3 }) },
        { type: 'metric', sessionId: 1, metric: metric(6) },
        { type: 'metric', sessionId: 1, metric: metric(5) },
      ],
      state,
    );
    expect(state.metrics.map((m) => m.round)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(state.metrics[3].testAccuracy).toBe(0.9);
    const figures = latestFigures(state);
    expect(figures.round).toBe(6);
    expect(figures.testAccuracy).toBe(0.9);
    expect(figures.evaluatedRounds).toBe(1);
  });

  it('caps metrics, logs and the timeline, keeping the newest', () => {
    const many = Array.from({ length: MAX_METRICS + 5 }, (_, i) => metric(i + 1));
    let state = feed([
      snapshot({
        metrics: many,
        logs: Array.from({ length: MAX_LOGS + 5 }, (_, i) => log(`l${i}`)),
        timeline: Array.from({ length: MAX_TIMELINE + 5 }, (_, i) => event('node-joined', T0 + i, { nodeId: i })),
      }),
    ]);
    expect(state.metrics).toHaveLength(MAX_METRICS);
    expect(state.metrics[0].round).toBe(6);
    expect(state.logs).toHaveLength(MAX_LOGS);
    expect(state.logs[0].message).toBe('l5');
    expect(state.timeline).toHaveLength(MAX_TIMELINE);
    expect(state.timeline[0].nodeId).toBe(5);

    state = feed(
      [
        { type: 'metric', sessionId: 1, metric: metric(MAX_METRICS + 6) },
        { type: 'log', line: log('last') },
        { type: 'timeline', event: event('node-failed', T0 + 10_000, { nodeId: 99 }) },
      ],
      state,
    );
    expect(state.metrics).toHaveLength(MAX_METRICS);
    expect(state.metrics[state.metrics.length - 1].round).toBe(MAX_METRICS + 6);
    expect(state.metrics[0].round).toBe(7);
    expect(state.logs).toHaveLength(MAX_LOGS);
    expect(state.logs[MAX_LOGS - 1].message).toBe('last');
    expect(state.timeline).toHaveLength(MAX_TIMELINE);
    expect(state.timeline[MAX_TIMELINE - 1].nodeId).toBe(99);
    expect(state.timeline[0].nodeId).toBe(6);
  });

  it('tolerates a snapshot without a timeline (an older coordinator)', () => {
    const message = snapshot();
    if (message.type !== 'snapshot') throw new Error('unreachable');
    const { timeline: _dropped, ...rest } = message.snapshot;
    const state = feed([{ type: 'snapshot', snapshot: rest as DashboardSnapshot }]);
    expect(state.ready).toBe(true);
    expect(state.timeline).toEqual([]);
  });

  it('reset goes back to the initial state', () => {
    const state = feed([snapshot({ timeline: [event('session-started', T0)] })]);
    expect(liveReducer(state, { type: 'reset' })).toBe(initialLiveState);
  });
});

describe('restartRounds', () => {
  it('lists the rounds of coordinator restarts, ascending, once each', () => {
    const timeline = [
      event('session-started', T0),
      event('coordinator-restarted', T0 + 10, { round: 40, detail: { checkpointRound: 40, replayed: 0, modelVersion: 40 } }),
      event('node-failed', T0 + 20, { round: 41 }),
      event('coordinator-restarted', T0 + 30, { round: 12 }),
      event('coordinator-restarted', T0 + 40, { round: 40 }),
    ];
    expect(restartRounds(timeline)).toEqual([12, 40]);
    expect(restartRounds([])).toEqual([]);
  });
});
