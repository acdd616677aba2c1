// The pure audit decisions: which updates are chosen (a uniform reservoir per node and epoch plus the rate),
// how a recomputation is judged, who forfeits; the epoch-audited event in the durable fold and the outbox rules;
// the per-node timeline fold.
import { describe, expect, it } from 'vitest';
import { AUDIT_RATE, AUDIT_TOLERANCE, compareUpdates, forfeitedNodes, forfeitReason, selectForAudit, verdict, withForfeits } from '../../src/server/core/audit';
import { EMPTY_DURABLE, evolveAll, type CommittedEvent } from '../../src/server/core/engine/committed';
import { readOutboxRow, storedOutboxEvents } from '../../src/server/adapters/db/outbox-rules';
import { buildNodeTimeline, splitReason } from '../../src/server/core/node-timeline';
import type { AuditRecord } from '../../src/server/core/audit-ports';
import type { ContributionRecord } from '../../src/server/core/types';
import { credited, started } from '../support/repository-conformance';
import { rng } from '../support/random';

describe('selection', () => {
  it('the reservoir holds a uniformly random one of a node’s updates in the epoch, so every one is equally likely to be audited', () => {
    const random = rng(7);
    const k = 10;
    const trials = 20_000;
    const held = new Array(k).fill(0);
    for (let t = 0; t < trials; t++) {
      let chosen = -1;
      for (let n = 1; n <= k; n++) if (selectForAudit(n, random(), 1).reservoir) chosen = n - 1;
      held[chosen]++;
    }
    // Each update is held at the end with probability 1/k (2,000 expected each): within 10%.
    for (const count of held) expect(Math.abs(count - trials / k)).toBeLessThan(trials / k / 10);
  });

  it('the first update is always a candidate (every node that delivers is audited once per epoch)', () => {
    expect(selectForAudit(1, 0.999999, 1).reservoir).toBe(true);
  });

  it('samples updates at the configured rate, independently of the reservoir', () => {
    const random = rng(11);
    let sampled = 0;
    const n = 50_000;
    for (let i = 0; i < n; i++) if (selectForAudit(1 + (i % 50), random(), random()).sampled) sampled++;
    expect(sampled / n).toBeGreaterThan(AUDIT_RATE * 0.9);
    expect(sampled / n).toBeLessThan(AUDIT_RATE * 1.1);
    expect(selectForAudit(3, 0.5, 0.5, 1).sampled).toBe(true);
    expect(selectForAudit(3, 0.5, 0.5, 0).sampled).toBe(false);
  });

  it('refuses a nonsense update number', () => {
    expect(() => selectForAudit(0, 0, 0)).toThrow(RangeError);
  });
});

describe('judging a recomputation', () => {
  const honest = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 0.01);

  it('passes float rounding and fails a wrong direction of the same norm', () => {
    const rounded = honest.map((v) => v * (1 + 1e-7));
    expect(verdict(compareUpdates(rounded, honest))).toBe('pass');
    const fake = honest.map((_, i) => Math.cos(i * 7) * 0.01);
    const c = compareUpdates(fake, honest);
    expect(c.relativeError).toBeGreaterThan(0.5);
    expect(verdict(c)).toBe('fail');
  });

  it('fails a scaled copy (free riding on a fraction of the samples), and NaN, and anything against a zero recomputation', () => {
    expect(verdict(compareUpdates(honest.map((v) => v * 1.01), honest))).toBe('fail');
    const nan = honest.slice();
    nan[3] = Number.NaN;
    expect(verdict(compareUpdates(nan, honest))).toBe('fail');
    expect(compareUpdates(honest, new Float32Array(1000)).relativeError).toBe(Number.POSITIVE_INFINITY);
    expect(compareUpdates(new Float32Array(1000), new Float32Array(1000)).relativeError).toBe(0);
  });

  it('reports the cosine as well, and refuses arrays of different sizes', () => {
    expect(compareUpdates(honest, honest).cosine).toBeCloseTo(1, 10);
    expect(compareUpdates(honest.map((v) => -v), honest).cosine).toBeCloseTo(-1, 10);
    expect(() => compareUpdates(honest, new Float32Array(3))).toThrow(RangeError);
  });

  it('the tolerance sits far above the measured honest error and far below a fabrication', () => {
    expect(AUDIT_TOLERANCE).toBeGreaterThan(100 * 4.2e-7);
    expect(AUDIT_TOLERANCE).toBeLessThan(1.41 / 100);
  });
});

describe('forfeits', () => {
  it('only a failed audit forfeits; an audit that could not run (error, pending) never does', () => {
    expect(
      forfeitedNodes([
        { nodeId: 3, outcome: 'fail' },
        { nodeId: 1, outcome: 'pass' },
        { nodeId: 2, outcome: 'error' },
        { nodeId: 4, outcome: 'pending' },
        { nodeId: 3, outcome: 'pass' },
        { nodeId: 5, outcome: 'fail' },
      ]),
    ).toEqual([3, 5]);
    expect(forfeitReason(2, [{ round: 7, relativeError: 1.41 }])).toMatch(/^AUDIT_FAILED: epoch 2 credit forfeited: .*round 7 \(relative error 1\.41\)/);
  });

  it('epoch-audited marks the forfeiting nodes’ epochs in the durable fold, credits kept', () => {
    const events: CommittedEvent[] = [
      started(1),
      credited(1, 1, 4, 'applied', 64),
      credited(1, 1, 5, 'applied', 64),
      { kind: 'epoch-audited', sessionId: 1, epoch: 0, forfeitedNodeIds: [5] },
      { kind: 'epoch-audited', sessionId: 1, epoch: 1, forfeitedNodeIds: [5, 6] },
    ];
    const state = evolveAll(EMPTY_DURABLE, events);
    expect(state.sessions.get(1)!.auditedEpoch).toBe(1);
    expect(state.credits.get(1)!.get(4)!.forfeitedEpochs).toBeUndefined();
    expect(state.credits.get(1)!.get(5)).toMatchObject({ acceptedSamples: 64, forfeitedEpochs: [0, 1] });
    expect(state.credits.get(1)!.get(6)!.forfeitedEpochs).toEqual([1]);
  });

  it('recovery puts the forfeits back into credits rebuilt from the ledger, as the fold left them', () => {
    const folded = evolveAll(EMPTY_DURABLE, [
      started(1),
      credited(1, 1, 5, 'applied', 64),
      { kind: 'epoch-audited', sessionId: 1, epoch: 0, forfeitedNodeIds: [5] },
      { kind: 'epoch-audited', sessionId: 1, epoch: 2, forfeitedNodeIds: [5] },
    ]).credits.get(1)!;
    const rebuilt = withForfeits(new Map([[5, { acceptedContributions: 1, rejectedContributions: 0, acceptedSamples: 64 }]]), [
      { nodeId: 5, epoch: 2 },
      { nodeId: 5, epoch: 0 },
    ]);
    expect(rebuilt).toEqual(folded);
  });

  it('epoch-audited reads back from the outbox as written; a damaged one is CORRUPT_RECORD', () => {
    const event: CommittedEvent = { kind: 'epoch-audited', sessionId: 1, epoch: 3, forfeitedNodeIds: [2, 9] };
    const [stored] = storedOutboxEvents([event]);
    expect(readOutboxRow(1, 1, 'epoch-audited', JSON.stringify(stored))).toStrictEqual(event);
    expect(() => readOutboxRow(2, 1, 'epoch-audited', JSON.stringify({ ...event, forfeitedNodeIds: ['x'] }))).toThrow(/outbox event 2 is corrupt/);
    expect(() => storedOutboxEvents([{ ...event, forfeitedNodeIds: null } as never])).toThrow(/forfeitedNodeIds must be an array/);
  });
});

describe('the node timeline', () => {
  const c = (round: number, status: 'applied' | 'rejected', extra: Partial<ContributionRecord> = {}): ContributionRecord => ({
    sessionId: 1,
    round,
    nodeId: 5,
    attempt: 1,
    samples: 32,
    epoch: status === 'applied' ? Math.floor(round / 10) : 0,
    shardStart: 0,
    shardCount: status === 'applied' ? 32 : 0,
    checksum: 1,
    trainLoss: 1,
    status,
    reason: null,
    receivedAt: 1000 + round,
    ...extra,
  });
  const audit = (round: number, epoch: number, outcome: AuditRecord['outcome']): AuditRecord => ({
    sessionId: 1,
    epoch,
    round,
    nodeId: 5,
    attempt: 1,
    modelVersion: round - 1,
    shardStart: 0,
    shardCount: 32,
    outcome,
    selectedBy: 'reservoir',
    relativeError: outcome === 'fail' ? 1.4 : 1e-7,
    cosine: null,
    tolerance: AUDIT_TOLERANCE,
    detail: null,
    selectedAt: 0,
    resolvedAt: 1,
  });

  it('per round and epoch: accepted, late, rejected with code and text, audited, credited, forfeited', () => {
    const timeline = buildNodeTimeline({
      node: { id: 5, name: 'n5', firstSeenAt: 0, lastSeenAt: 1 },
      contributions: [
        c(3, 'applied'),
        c(4, 'rejected', { reason: 'STALE_ROUND: session 1 round 4 is closed (current round 5)', count: 2 }),
        c(5, 'rejected', { reason: 'NOT_FINITE: update has 10 NaN values' }),
        c(12, 'applied'),
        c(13, 'applied'),
      ],
      audits: [audit(3, 0, 'pass'), audit(13, 1, 'fail')],
      forfeits: [{ sessionId: 1, epoch: 1, nodeId: 5, reason: 'AUDIT_FAILED: epoch 1 credit forfeited', at: 2 }],
      events: [],
    });
    expect(timeline.totals).toEqual({ delivered: 6, accepted: 3, late: 2, rejected: 1, audited: 2, auditsFailed: 1, creditedSamples: 32, forfeitedSamples: 64 });
    const byRound = new Map(timeline.rounds.map((r) => [r.round, r]));
    expect(byRound.get(4)).toMatchObject({ status: 'late', reasonCode: 'STALE_ROUND', count: 2, epoch: null });
    expect(byRound.get(5)).toMatchObject({ status: 'rejected', reasonCode: 'NOT_FINITE', reason: 'update has 10 NaN values' });
    expect(byRound.get(3)).toMatchObject({ status: 'accepted', creditedSamples: 32, forfeited: false, audit: { outcome: 'pass' } });
    expect(byRound.get(13)).toMatchObject({ creditedSamples: 0, forfeited: true, audit: { outcome: 'fail' } });
    expect(timeline.epochs).toEqual([
      { sessionId: 1, epoch: 1, acceptedUpdates: 2, acceptedSamples: 64, audits: { pass: 0, fail: 1, error: 0, pending: 0 }, forfeited: true, forfeitReason: 'AUDIT_FAILED: epoch 1 credit forfeited', creditedSamples: 0, settled: null, claimed: null },
      { sessionId: 1, epoch: 0, acceptedUpdates: 1, acceptedSamples: 32, audits: { pass: 1, fail: 0, error: 0, pending: 0 }, forfeited: false, forfeitReason: null, creditedSamples: 32, settled: null, claimed: null },
    ]);
  });

  it('splits "CODE: text" reasons and keeps others whole', () => {
    expect(splitReason('QUORUM_NOT_MET: round 3 was not applied: x')).toEqual({ code: 'QUORUM_NOT_MET', text: 'round 3 was not applied: x' });
    expect(splitReason('odd reason')).toEqual({ code: null, text: 'odd reason' });
    expect(splitReason(null)).toEqual({ code: null, text: null });
  });
});
