// The console's derived views (core/console-views.ts) and the rejection counts /metrics derives from the ledger.
import { describe, expect, it } from 'vitest';
import { createMetricsExporter } from '../../src/server/adapters/metrics-exporter';
import { EventBus } from '../../src/server/adapters/event-bus';
import { nodeActivity, reasonCode, roundTimeline } from '../../src/server/core/console-views';
import type { ContributionRecord, RoundSummary } from '../../src/server/core/types';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text';
import { fakeNode, T0 } from '../support/fake-control';

const round = (n: number, over: Partial<RoundSummary> = {}): RoundSummary => ({
  sessionId: 1,
  round: n,
  modelVersion: n,
  openedAt: T0 + n * 10_000,
  closedAt: T0 + n * 10_000 + 900,
  applied: true,
  updates: 3,
  samples: 384,
  trainLoss: 1,
  failures: 0,
  totalSamples: 384 * n,
  cursor: { epoch: 0, position: 0, pending: [] },
  ...over,
});

const contribution = (n: number, nodeId: number, afterMs: number, over: Partial<ContributionRecord> = {}): ContributionRecord => ({
  sessionId: 1,
  round: n,
  nodeId,
  attempt: 1,
  samples: 128,
  epoch: 0,
  shardStart: 0,
  shardCount: 128,
  checksum: 0,
  trainLoss: 1,
  status: 'applied',
  reason: null,
  receivedAt: T0 + n * 10_000 + afterMs,
  ...over,
});

describe('roundTimeline', () => {
  it('puts the cut-off a grace after the quorum delivered, and marks later and stale arrivals late', () => {
    // Four nodes assigned (three delivered, one failed): the quorum is 2; the second arrival at 300 ms starts a
    // 300 ms grace, so the cut-off is at 600 ms; the one at 800 ms is late, and so is a STALE_ROUND rejection.
    const rounds = [round(1, { failures: 1 })];
    const rows = [contribution(1, 1, 100), contribution(1, 2, 300), contribution(1, 3, 800, { status: 'rejected', reason: 'STALE_ROUND: round 1 is closed' })];
    const [entry] = roundTimeline(rounds, rows, 30_000);
    expect(entry).toMatchObject({ round: 1, assigned: 4, failures: 1, durationMs: 900, cutoffMs: 600, deadlineMs: 30_000 });
    expect(entry.arrivals.map((a) => [a.nodeId, a.atMs, a.late])).toEqual([
      [1, 100, false],
      [2, 300, false],
      [3, 800, true],
    ]);
  });

  it('has no cut-off for a lone node, and a deadline from recent arrivals once there are five', () => {
    const rounds = [1, 2, 3, 4, 5, 6].map((n) => round(n, { updates: 1 }));
    const rows = rounds.map((r) => contribution(r.round, 1, 500));
    const timeline = roundTimeline(rounds, rows, 30_000);
    expect(timeline.every((e) => e.cutoffMs === null)).toBe(true);
    expect(timeline[4].deadlineMs).toBe(30_000); // four arrivals seen: not enough to estimate
    expect(timeline[5].deadlineMs).toBe(1_500); // p90 500 ms x 3
  });
});

describe('nodeActivity', () => {
  it('gives each contribution its round trip and throughput, and counts rejections by reason code', () => {
    const rounds = [round(1), round(2), round(3)];
    const rows = [
      contribution(1, 7, 400),
      contribution(2, 7, 200, { status: 'rejected', reason: 'NORM_TOO_LARGE: 1e9', count: 3 }),
      contribution(2, 8, 100),
      contribution(3, 7, 250, { scale: 0.4 }),
    ];
    const events = [{ sessionId: 1, at: T0, round: 2, kind: 'node-failed' as const, message: 'x failed', nodeId: 7, detail: null }];
    const activity = nodeActivity(7, 1, rounds, rows, events);
    expect(activity).toMatchObject({ accepted: 2, clipped: 1, rejected: 3, rejectedByReason: { NORM_TOO_LARGE: 3 }, failures: events });
    expect(activity.contributions[0]).toMatchObject({ round: 1, latencyMs: 400, samplesPerSecond: 320, status: 'applied', scale: null });
    expect(activity.contributions[2]).toMatchObject({ round: 3, status: 'applied', scale: 0.4 });
    expect(activity.contributions[1]).toMatchObject({ round: 2, status: 'rejected', samplesPerSecond: null, count: 3 });
    expect(reasonCode(null)).toBe('unknown');
  });
});

describe('/metrics rejections by reason', () => {
  it('sums the current session’s rejected rows per reason code, and counts its clipped ones, from one read of the ledger', async () => {
    let reads = 0;
    const rows = [
      contribution(1, 1, 100, { status: 'rejected', reason: 'STALE_ROUND: late', count: 2 }),
      contribution(2, 1, 100, { status: 'rejected', reason: 'STALE_ROUND: late' }),
      contribution(2, 2, 100, { status: 'rejected', reason: 'CHECKSUM: mismatch' }),
      contribution(2, 3, 100),
      contribution(2, 4, 100, { scale: 0.25 }),
      contribution(1, 4, 100, { scale: 0 }),
    ];
    const exporter = createMetricsExporter(
      {
        status: () => ({ state: 'running', sessionId: 1, round: 2, modelVersion: 2, nodes: { total: 1, active: 1, training: 1, failed: 0 }, session: null, startedAt: T0, now: T0 }),
        nodes: () => [fakeNode(1)],
        checkpoints: async () => [],
        contributions: async () => (reads++, rows),
        events: new EventBus(),
      },
      { processMetrics: false, aggregation: () => ({ calls: 4, wallMs: 2000 }) },
    );
    const families = parsePrometheusText((await exporter.scrape()).body);
    expect(reads).toBe(1);
    expect(sampleValue(families, 'hypergpu_session_updates_clipped')).toBe(2);
    expect(sampleValue(families, 'hypergpu_session_updates_rejected', { reason: 'STALE_ROUND' })).toBe(3);
    expect(sampleValue(families, 'hypergpu_session_updates_rejected', { reason: 'CHECKSUM' })).toBe(1);
    expect(sampleValue(families, 'hypergpu_aggregations_total')).toBe(4);
    expect(sampleValue(families, 'hypergpu_aggregation_seconds_total')).toBe(2);
    await exporter.scrape();
    expect(reads).toBe(2); // read again on the next scrape, not cached across scrapes
    exporter.close();
  });
});
