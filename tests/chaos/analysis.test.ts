// The chaos harness's judging logic on hand-made records (no processes): detection latencies are matched
// to the right fault and source, and the ledger re-check catches what it is meant to catch.
import { describe, expect, it } from 'vitest';
import { detections, median, nodeCredits, recheckLedger } from '../support/chaos/analysis';
import type { ContributionInfo, NodeInfo, RoundInfo, StatusResponse } from '../support/chaos/api';
import type { Injection, NodeTransition } from '../support/chaos/cluster';

const transition = (t: Partial<NodeTransition>): NodeTransition => ({
  observedAt: 0,
  nodeId: 1,
  name: 'chaos-1',
  status: 'failed',
  reason: null,
  statusChangedAt: null,
  lastHeartbeatAt: 0,
  ...t,
});

describe('detections', () => {
  const kill: Injection = { at: 10_000, action: 'sigkill', agent: 0, nodeId: 1, expect: 'closed' };
  const stop: Injection = { at: 20_000, action: 'sigstop', agent: 1, nodeId: 2, expect: 'silent' };

  it('prefers the timeline event, then statusChangedAt, then the poll', () => {
    const fromEvent = detections({
      injections: [kill],
      events: [
        { at: 9_000, round: 1, kind: 'node-failed', message: 'earlier failure', nodeId: 1 },
        { at: 10_030, round: 2, kind: 'node-failed', message: 'closed', nodeId: 1 },
      ],
      transitions: [transition({ observedAt: 10_090, statusChangedAt: 10_031 })],
    });
    expect(fromEvent[0]).toMatchObject({ latencyMs: 30, source: 'event', reason: 'closed' });

    const fromStatus = detections({ injections: [kill], events: null, transitions: [transition({ observedAt: 10_090, statusChangedAt: 10_031 })] });
    expect(fromStatus[0]).toMatchObject({ latencyMs: 31, source: 'status-changed-at' });

    const fromPoll = detections({ injections: [kill], events: [], transitions: [transition({ observedAt: 10_090 })] });
    expect(fromPoll[0]).toMatchObject({ latencyMs: 90, source: 'poll' });
  });

  it('measures a silent node from the fault and from its last heartbeat', () => {
    const [d] = detections({
      injections: [stop],
      events: null,
      transitions: [transition({ nodeId: 2, statusChangedAt: 20_700, observedAt: 20_750, lastHeartbeatAt: 19_950 })],
    });
    expect(d).toMatchObject({ expect: 'silent', latencyMs: 700, sinceLastHeartbeatMs: 750 });
  });

  it('reports a fault the coordinator never noticed, and ignores actions that expect nothing', () => {
    const heal: Injection = { at: 30_000, action: 'heal', agent: 1, nodeId: 2 };
    const result = detections({ injections: [stop, heal], events: [], transitions: [transition({ nodeId: 2, status: 'idle', statusChangedAt: 20_500 })] });
    expect(result).toHaveLength(1);
    expect(result[0]).toMatchObject({ detectedAt: null, latencyMs: null, source: 'none' });
  });
});

describe('ledger re-check', () => {
  const status = (totalSamples: number, modelVersion: number): StatusResponse => ({
    state: 'completed',
    sessionId: 1,
    round: modelVersion,
    modelVersion,
    nodes: { total: 2, active: 2, training: 0, failed: 0 },
    session: { lastTestAccuracy: 0.9, totalSamples },
  });
  const round = (n: number, updates: number, samples: number, applied = true): RoundInfo => ({ round: n, openedAt: n * 100, closedAt: n * 100 + 50, applied, updates, samples, failures: 0 });
  const applied = (roundNo: number, nodeId: number, shardStart: number, samples = 64): ContributionInfo => ({
    round: roundNo,
    nodeId,
    attempt: 1,
    samples,
    status: 'applied',
    reason: null,
    receivedAt: 0,
    epoch: 0,
    shardStart,
    shardCount: samples,
  });
  const node = (id: number, acceptedContributions: number, acceptedSamples: number): NodeInfo => ({
    id,
    name: `chaos-${id}`,
    status: 'idle',
    statusReason: null,
    lastHeartbeatAt: 0,
    acceptedContributions,
    rejectedContributions: 0,
    acceptedSamples,
  });

  it('accepts a consistent ledger', () => {
    const run = {
      status: status(256, 2),
      rounds: [round(1, 2, 128), round(2, 2, 128)],
      contributions: [applied(1, 1, 0), applied(1, 2, 64), applied(2, 1, 128), applied(2, 2, 192)],
      nodes: [node(1, 2, 128), node(2, 2, 128)],
    };
    expect(recheckLedger(run)).toMatchObject({ ok: true, duplicates: 0, appliedSamples: 256, appliedRounds: 2 });
    expect(nodeCredits(run).ok).toBe(true);
  });

  it('catches an update applied twice, samples trained twice, and a model that disagrees', () => {
    const run = {
      status: status(320, 2),
      rounds: [round(1, 2, 128), round(2, 2, 128)],
      contributions: [applied(1, 1, 0), applied(1, 2, 64), applied(2, 1, 128), applied(2, 2, 192), applied(2, 2, 64)],
      nodes: [node(1, 2, 128), node(2, 2, 128)],
    };
    const result = recheckLedger(run);
    expect(result.ok).toBe(false);
    expect(result.duplicates).toBe(1);
    expect(result.overlappingSamples).toBe(64);
    expect(result.problems.join('\n')).toMatch(/applied more than once/);
    expect(result.problems.join('\n')).toMatch(/round 2: 2 updates/);
  });

  it('catches lost samples and per-node credits that disagree with the ledger', () => {
    const run = {
      status: status(256, 2),
      rounds: [round(1, 2, 128), round(2, 1, 64), round(3, 0, 0, false)],
      contributions: [applied(1, 1, 0), applied(1, 2, 64), applied(2, 1, 128)],
      nodes: [node(1, 1, 64), node(2, 1, 64)],
    };
    const result = recheckLedger(run);
    expect(result.ok).toBe(false);
    expect(result.problems.join('\n')).toMatch(/192 samples, the session counts 256/);
    const credits = nodeCredits(run);
    expect(credits.ok).toBe(false);
    expect(credits.detail).toMatch(/chaos-1 \(#1\) shows 1 updates \/ 64 samples, ledger 2 \/ 128/);
  });

  it('median', () => {
    expect(median([])).toBeNull();
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});
