// The audit service with fakes around it (store, auditor, model, clock, draws): which captured updates are
// recomputed and when, how an epoch's result is committed once, and what happens to audits a restart cut off.
import { describe, expect, it } from 'vitest';
import type { Auditor } from '../../src/server/core/audit-ports';
import type { CommittedEvent, OutboxRecord } from '../../src/server/core/engine/committed';
import type { LiveRound } from '../../src/server/core/engine/state';
import type { UpdateSlot } from '../../src/server/core/ports';
import type { Assignment, SessionConfig } from '../../src/server/core/types';
import { Audits, type AuditsDeps } from '../../src/server/services/audits';
import { FakeAuditSpill } from '../support/fake-audit-spill';
import { FakeAuditStore } from '../support/fake-audit-store';
import { FakeClock, flush } from '../support/fakes';

const P = 16;
/** The "true" update of a shard: what an honest node sends and what the fake auditor recomputes. */
const honestUpdate = (shardStart: number) => Float32Array.from({ length: P }, (_, i) => Math.sin(i + shardStart));

class FakeAuditor implements Auditor {
  calls: { shardStart: number; params: Float32Array }[] = [];
  failWith: string | null = null;
  closes = 0;
  async recompute(input: { params: Float32Array; shardStart: number }) {
    this.calls.push({ shardStart: input.shardStart, params: input.params });
    if (this.failWith) throw new Error(this.failWith);
    return honestUpdate(input.shardStart);
  }
  async close() {
    this.closes++;
  }
}

function setup(draws: number[] = [], extra: Partial<AuditsDeps> = {}) {
  const logs: string[] = [];
  const store = new FakeAuditStore();
  const auditor = new FakeAuditor();
  const clock = new FakeClock();
  const reports: { event: CommittedEvent; reasons: Record<number, string> }[] = [];
  const delivered: OutboxRecord[] = [];
  const model = { model: { sessionId: 1, modelVersion: 0, params: new Float32Array(P).fill(0.5), optimizer: { step: 0, slots: [] } }, paramsCopy: () => ({ modelVersion: 0, params: new Float32Array(P) }) };
  let d = 0;
  const started = { auditors: 0 };
  const audits = new Audits({
    store,
    createAuditor: async () => {
      started.auditors++;
      return auditor;
    },
    model,
    clock,
    // Scripted draws (reservoir, sample) per update; past the script: keep the held candidate, no sampling.
    random: () => (d < draws.length ? draws[d++] : 0.999),
    session: () => ({ config: { seed: 42, model: 'mlp', dataset: 'mnist' } as SessionConfig }),
    deliver: (records) => delivered.push(...records),
    report: (event, reasons) => reports.push({ event, reasons }),
    log: (_level, message) => logs.push(message),
    ...extra,
  });
  const slots = new Map<number, UpdateSlot>();
  let nextSlot = 1;
  /** Round `round` on model version `version`: each node delivers its shard's update (a liar sends noise). */
  const round = (r: number, version: number, shards: { nodeId: number; epoch: number; shardStart: number; lie?: boolean }[]): LiveRound => {
    model.model.modelVersion = version;
    const assignments = new Map<number, Assignment>();
    const accepted = shards.map((s) => {
      const slot = nextSlot++;
      const view = s.lie ? Float32Array.from({ length: P }, (_, i) => Math.cos(7 * i)) : honestUpdate(s.shardStart);
      slots.set(slot, { id: slot, view });
      assignments.set(s.nodeId, { sessionId: 1, round: r, modelVersion: version, nodeId: s.nodeId, attempt: 1, epoch: s.epoch, shardStart: s.shardStart, shardCount: 32, batchSize: 32, deadlineAt: 0 });
      store.contributions.push({ sessionId: 1, round: r, nodeId: s.nodeId, attempt: 1, samples: 32, epoch: s.epoch, shardStart: s.shardStart, shardCount: 32, checksum: 0, trainLoss: 1, status: 'applied', reason: null, receivedAt: 0 });
      return { nodeId: s.nodeId, attempt: 1, samples: 32, trainLoss: 1, checksum: 0, receivedAt: 0, slot };
    });
    return {
      open: { sessionId: 1, round: r, modelVersion: version, openedAt: 0, deadlineAt: 0, assignments, accepted: new Map(accepted.map((u) => [u.nodeId, u])), failed: new Map(), refused: new Set() },
      stage: 'aggregating',
      stragglerArmed: false,
      closedBecause: 'all delivered',
      outcome: { apply: true, reason: '', accepted, missing: [], samples: 64, trainLoss: 1, cursor: { epoch: 0, position: 0, pending: [] } },
    };
  };
  let id = 1;
  const event = (e: CommittedEvent) => audits.handle({ id: id++, event: e });
  const committed = (r: number, applied = true) =>
    event({ kind: 'round-committed', sessionId: 1, round: r, applied, modelVersion: r, samples: 64, totalSamples: 64 * r, epoch: 0, cursor: { epoch: 0, position: 0, pending: [] }, metric: { round: r, at: 0, trainLoss: 1, testLoss: null, testAccuracy: null, samples: 64, totalSamples: 64, samplesPerSecond: 0, roundDurationMs: 1, nodes: 2 } });
  const capture = (lr: LiveRound) => audits.capture(lr, (s) => slots.get(s));
  return { audits, store, auditor, reports, delivered, round, event, committed, capture, model, started, logs };
}

describe('audit service', () => {
  it('audits each node once per epoch (its reservoir candidate) on the model version it trained from, forfeits the liar, commits once', async () => {
    const s = setup();
    await s.event({ kind: 'session-started', sessionId: 1, at: 0, config: {} as SessionConfig, trainSize: 640, paramCount: P });
    for (let r = 1; r <= 3; r++) {
      s.capture(s.round(r, r - 1, [{ nodeId: 1, epoch: 0, shardStart: r * 64 }, { nodeId: 2, epoch: 0, shardStart: r * 64 + 32, lie: true }]));
      await s.committed(r);
    }
    expect(s.auditor.calls).toEqual([]); // nothing sampled (draws 0.999): the reservoir waits for the epoch's end
    await s.event({ kind: 'epoch-closed', sessionId: 1, epoch: 0, round: 3 });
    // With draws of 0.999 only the first update of each node entered the reservoir: round 1's.
    expect(s.store.audits.map((a) => [a.nodeId, a.round, a.outcome, a.selectedBy, a.modelVersion])).toEqual([
      [1, 1, 'pass', 'reservoir', 0],
      [2, 1, 'fail', 'reservoir', 0],
    ]);
    expect(s.store.forfeits.map((f) => [f.nodeId, f.epoch])).toEqual([[2, 0]]);
    expect(s.store.forfeits[0].reason).toMatch(/^AUDIT_FAILED: epoch 0 credit forfeited/);
    expect(s.store.outbox).toEqual([{ kind: 'epoch-audited', sessionId: 1, epoch: 0, forfeitedNodeIds: [2] }]);
    expect(s.reports[0].reasons[2]).toMatch(/AUDIT_FAILED/);
    expect(s.delivered.map((r) => r.event.kind)).toEqual(['epoch-audited']);
    // Redelivered (at-least-once): nothing twice.
    await s.event({ kind: 'epoch-closed', sessionId: 1, epoch: 0, round: 3 });
    expect(s.store.marks).toHaveLength(1);
    expect(s.auditor.calls).toHaveLength(2);
  });

  it('starts the auditor at the first audit, lets it go when the session ends, and starts a fresh one if an audit comes later', async () => {
    const s = setup([0.1, 0.01, 0.1, 0.01]);
    await s.event({ kind: 'session-started', sessionId: 1, at: 0, config: {} as SessionConfig, trainSize: 640, paramCount: P });
    expect(s.started.auditors).toBe(0); // no thread before there is something to recompute
    s.capture(s.round(1, 0, [{ nodeId: 1, epoch: 0, shardStart: 0 }]));
    await s.committed(1);
    await flush();
    expect(s.started.auditors).toBe(1);
    // A pause keeps it; the end of the session lets it go once the audits queued before have run.
    await s.event({ kind: 'session-state-changed', sessionId: 1, at: 1, state: 'paused', message: null, endedAt: null });
    await flush();
    expect(s.auditor.closes).toBe(0);
    await s.event({ kind: 'session-state-changed', sessionId: 1, at: 2, state: 'completed', message: null, endedAt: 2 });
    await flush();
    expect(s.auditor.closes).toBe(1);
    expect(s.store.audits.map((a) => [a.nodeId, a.round, a.outcome])).toEqual([[1, 1, 'pass']]);
    // An audit of the session that comes after its end (a round committed late) still runs, on a fresh auditor.
    s.capture(s.round(2, 1, [{ nodeId: 2, epoch: 0, shardStart: 32 }]));
    await s.committed(2);
    await flush();
    expect(s.started.auditors).toBe(2);
    expect(s.store.audits.map((a) => [a.nodeId, a.round, a.outcome])).toEqual([[1, 1, 'pass'], [2, 2, 'pass']]);
  });

  it('a sampled update is audited as soon as its round commits; a round that does not commit is never audited', async () => {
    // Round 1: node 1 reservoir yes + sampled yes; node 2 reservoir yes + sampled no.
    const s = setup([0.1, 0.01, 0.1, 0.9]);
    s.capture(s.round(1, 0, [{ nodeId: 1, epoch: 0, shardStart: 0 }, { nodeId: 2, epoch: 0, shardStart: 32 }]));
    await s.committed(1);
    await flush();
    expect(s.store.audits.map((a) => [a.nodeId, a.round, a.outcome, a.selectedBy])).toEqual([[1, 1, 'pass', 'reservoir+sampled']]);
    // Round 2 aggregates but its commit fails; round 3 commits: round 2's captures are dropped.
    s.capture(s.round(2, 1, [{ nodeId: 1, epoch: 0, shardStart: 64, lie: true }]));
    s.capture(s.round(3, 1, [{ nodeId: 2, epoch: 0, shardStart: 96 }]));
    await s.committed(3);
    await s.event({ kind: 'epoch-closed', sessionId: 1, epoch: 0, round: 3 });
    expect(s.store.audits.map((a) => [a.nodeId, a.round, a.outcome])).toEqual([
      [1, 1, 'pass'],
      [2, 1, 'pass'],
    ]);
    expect(s.store.outbox).toEqual([{ kind: 'epoch-audited', sessionId: 1, epoch: 0, forfeitedNodeIds: [] }]);
  });

  it('an audit that cannot run is recorded as not done and forfeits nothing', async () => {
    const s = setup();
    s.auditor.failWith = 'model version evicted';
    s.capture(s.round(1, 0, [{ nodeId: 2, epoch: 0, shardStart: 0, lie: true }]));
    await s.committed(1);
    await s.event({ kind: 'epoch-closed', sessionId: 1, epoch: 0, round: 1 });
    expect(s.store.audits.map((a) => [a.nodeId, a.outcome, a.detail])).toEqual([[2, 'error', 'not done: model version evicted']]);
    expect(s.store.forfeits).toEqual([]);
    expect(s.store.outbox).toEqual([{ kind: 'epoch-audited', sessionId: 1, epoch: 0, forfeitedNodeIds: [] }]);
  });

  it('after a restart: a pending audit and a node whose chosen update was lost are recorded as not done, never passed', async () => {
    const before = setup();
    // The first process chose node 1's round-1 update and wrote the pending row, then died.
    await before.store.recordAuditSelected({ sessionId: 1, epoch: 0, round: 1, nodeId: 1, attempt: 1, modelVersion: 0, shardStart: 0, shardCount: 32, outcome: 'pending', selectedBy: 'sampled', relativeError: null, cosine: null, tolerance: 1e-3, detail: null, selectedAt: 0, resolvedAt: null });
    before.round(1, 0, [{ nodeId: 1, epoch: 0, shardStart: 0 }, { nodeId: 2, epoch: 0, shardStart: 32, lie: true }]);
    // The new process (nothing captured in memory) is handed the epoch-closed again by its outbox cursor.
    await before.event({ kind: 'epoch-closed', sessionId: 1, epoch: 0, round: 1 });
    const rows = before.store.audits.map((a) => [a.nodeId, a.outcome, a.selectedBy, a.detail]);
    expect(rows).toEqual([
      [1, 'error', 'sampled', 'not done: the coordinator restarted before this audit finished'],
      [2, 'error', 'unrecoverable', 'not done: the update chosen for this node was not held (coordinator restart, or the audit queue\'s memory and disk bounds were full)'],
    ]);
    expect(before.auditor.calls).toEqual([]);
    expect(before.store.forfeits).toEqual([]);
    expect(before.store.marks).toEqual([{ sessionId: 1, epoch: 0, audits: 2, forfeited: 0 }]);
  });

  it('does not capture when the model has moved past the round’s version (nothing to recompute from)', async () => {
    const s = setup();
    const lr = s.round(1, 0, [{ nodeId: 1, epoch: 0, shardStart: 0 }]);
    s.model.model.modelVersion = 5;
    s.capture(lr);
    await s.committed(1);
    await s.event({ kind: 'epoch-closed', sessionId: 1, epoch: 0, round: 1 });
    expect(s.auditor.calls).toEqual([]);
    expect(s.store.audits.map((a) => [a.nodeId, a.outcome, a.selectedBy])).toEqual([[1, 'error', 'unrecoverable']]);
  });

  it('captures past the memory bound wait in scratch files and are audited from them: the liar is still caught, no file is left', async () => {
    const spill = new FakeAuditSpill();
    // Round 1: both nodes sampled (and reservoir); rounds 2-3: neither (draws past the script): not captured.
    const s = setup([0.1, 0.01, 0.1, 0.01], { spill, limits: { memoryBytes: 0, diskBytes: 1 << 20 } });
    await s.event({ kind: 'session-started', sessionId: 1, at: 0, config: {} as SessionConfig, trainSize: 640, paramCount: P });
    for (let r = 1; r <= 3; r++) {
      s.capture(s.round(r, r - 1, [{ nodeId: 1, epoch: 0, shardStart: r * 64 }, { nodeId: 2, epoch: 0, shardStart: r * 64 + 32, lie: true }]));
      await s.committed(r);
    }
    await s.event({ kind: 'epoch-closed', sessionId: 1, epoch: 0, round: 3 });
    await flush();
    expect(s.store.audits.map((a) => [a.nodeId, a.round, a.outcome, a.selectedBy])).toEqual([
      [1, 1, 'pass', 'reservoir+sampled'],
      [2, 1, 'fail', 'reservoir+sampled'],
    ]);
    expect(s.store.forfeits.map((f) => [f.nodeId, f.epoch])).toEqual([[2, 0]]);
    // Every vector went through a file (nothing fit in memory): the model of round 1 once, shared by both captures.
    expect(spill.log.filter((l) => l.startsWith('write'))).toEqual(['write 1.f32', 'write 2.f32', 'write 3.f32']);
    expect(spill.log.filter((l) => l.startsWith('read'))).toEqual(['read 1.f32', 'read 2.f32', 'read 1.f32', 'read 3.f32']);
    expect(Array.from(s.auditor.calls[0].params)).toEqual(Array.from(new Float32Array(P).fill(0.5)));
    // Removed after their runs (the model with the second one).
    expect(spill.files.size).toBe(0);
    expect(s.audits.vaultStats()).toMatchObject({ memoryBytes: 0, diskBytes: 0, refused: 0 });
  });

  it('past both bounds a chosen update is recorded as not audited, never passed, and the operator is told', async () => {
    const spill = new FakeAuditSpill();
    // Room for round 1's model and one update: node 2's (the liar's) capture is refused.
    const s = setup([], { spill, limits: { memoryBytes: 0, diskBytes: 2 * P * 4 } });
    s.capture(s.round(1, 0, [{ nodeId: 1, epoch: 0, shardStart: 0 }, { nodeId: 2, epoch: 0, shardStart: 32, lie: true }]));
    await s.committed(1);
    await s.event({ kind: 'epoch-closed', sessionId: 1, epoch: 0, round: 1 });
    expect(s.store.audits.map((a) => [a.nodeId, a.outcome, a.selectedBy])).toEqual([
      [1, 'pass', 'reservoir'],
      [2, 'error', 'unrecoverable'],
    ]);
    expect(s.store.forfeits).toEqual([]);
    expect(s.logs.join('\n')).toMatch(/audit queue full \(memory and scratch-file bounds\): round 1 updates not captured/);
    expect(s.audits.vaultStats()).toMatchObject({ refused: 1, diskBytes: 0 });
  });

  it('a scratch file that cannot be read back makes its audit not done, never passed', async () => {
    const spill = new FakeAuditSpill();
    const s = setup([], { spill, limits: { memoryBytes: 0, diskBytes: 1 << 20 } });
    s.capture(s.round(1, 0, [{ nodeId: 2, epoch: 0, shardStart: 0, lie: true }]));
    await s.committed(1);
    await flush();
    spill.files.clear(); // deleted behind the coordinator's back
    await s.event({ kind: 'epoch-closed', sessionId: 1, epoch: 0, round: 1 });
    expect(s.store.audits.map((a) => [a.nodeId, a.outcome])).toEqual([[2, 'error']]);
    expect(s.store.audits[0].detail).toMatch(/^not done: the captured update could not be read back: no spill file/);
    expect(s.store.forfeits).toEqual([]);
  });

  it('a session whose updates cannot be recomputed (a lossy codec) keeps no copy and never starts the auditor; its audits are not done', async () => {
    const spill = new FakeAuditSpill();
    const s = setup([], { spill, limits: { memoryBytes: 0, diskBytes: 1 << 20 }, session: () => ({ config: { seed: 42, model: 'mlp', dataset: 'mnist', codec: 'int8' } as SessionConfig }) });
    s.capture(s.round(1, 0, [{ nodeId: 2, epoch: 0, shardStart: 0, lie: true }]));
    expect(spill.log).toEqual([]);
    await s.committed(1);
    await s.event({ kind: 'epoch-closed', sessionId: 1, epoch: 0, round: 1 });
    expect(s.store.audits.map((a) => [a.nodeId, a.outcome, a.selectedBy, a.detail])).toEqual([[2, 'error', 'reservoir', 'not done: updates sent as int8 are quantized on the agent and are not audited']]);
    expect(s.started.auditors).toBe(0);
    expect(s.store.forfeits).toEqual([]);
    expect(s.audits.vaultStats()).toMatchObject({ memoryBytes: 0, diskBytes: 0, spilled: 0, refused: 0 });
  });
});
