// A TrainingControl made of plain objects, for unit tests of the API layer (procedures, tRPC router, REST
// facade). It keeps one session in memory, follows start/pause/resume/stop like the coordinator (CONFLICT when
// the state does not allow it) and answers every read from fixed records built here.
import { exportLayersModel } from '../../src/ml/layers-export';
import { initialParams, modelSpec } from '../../src/ml/models';
import { EventBus } from '../../src/server/adapters/event-bus';
import { RequestError } from '../../src/protocol/errors';
import type { StatusSnapshot } from '../../src/server/core/events';
import { resolveSessionConfig } from '../../src/server/core/session-config';
import type { CheckpointRecord, ContributionRecord, MetricPoint, NodeSnapshot, RoundSummary, SessionEvent, SessionSnapshot } from '../../src/server/core/types';
import type { LedgerReport } from '../../src/server/core/ledger';
import type { SessionConfigInput, TrainingControl } from '../../src/server/services/training-control';

export const T0 = 1_800_000_000_000;

export function fakeNode(id: number, over: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return {
    id,
    name: `node-${id}`,
    status: 'training',
    statusReason: null,
    capabilities: { backend: 'wasm', device: 'cpu', samplesPerSecond: 4000, agentVersion: '0.1.0', hostname: `host-${id}` },
    joinedAt: T0,
    lastHeartbeatAt: T0 + 1000,
    acceptedContributions: 3,
    rejectedContributions: 1,
    acceptedSamples: 192,
    samplesPerSecond: 3500.5,
    rttMs: 2.5,
    uploadBytesPerSecond: 1.2e8,
    outlierScore: 1.1,
    currentRound: 4,
    statusChangedAt: T0,
    ...over,
  };
}

export function fakeMetric(round: number, over: Partial<MetricPoint> = {}): MetricPoint {
  const evaluated = round % 5 === 0;
  return {
    round,
    at: T0 + round * 100,
    trainLoss: 2 / round,
    testLoss: evaluated ? 1 / round : null,
    testAccuracy: evaluated ? 0.5 + round / 1000 : null,
    samples: 128,
    totalSamples: 128 * round,
    samplesPerSecond: 1280,
    roundDurationMs: 100,
    nodes: 2,
    ...over,
  };
}

export interface FakeControl extends TrainingControl {
  /** The records the reads answer from; tests may change them. */
  data: {
    session: SessionSnapshot | null;
    nodes: NodeSnapshot[];
    history: MetricPoint[];
    rounds: RoundSummary[];
    contributions: ContributionRecord[];
    checkpoints: CheckpointRecord[];
    events: SessionEvent[];
  };
  /** Arguments of the last metrics() call. */
  lastMetricsCall: { sessionId?: number; limit?: number } | null;
}

export function createFakeControl(rounds = 12): FakeControl {
  const history = Array.from({ length: rounds }, (_, i) => fakeMetric(i + 1));
  const data: FakeControl['data'] = {
    session: null,
    nodes: [fakeNode(1), fakeNode(2, { status: 'failed', statusReason: 'heartbeat timeout', currentRound: null })],
    history,
    rounds: [],
    contributions: [],
    checkpoints: [],
    events: [],
  };
  const sessionOf = (id: number) => (data.session && data.session.id === id ? data.session : null);
  const control: FakeControl = {
    data,
    lastMetricsCall: null,
    events: new EventBus(),
    status(): StatusSnapshot {
      const s = data.session;
      return {
        state: s?.state ?? 'idle',
        sessionId: s?.id ?? null,
        round: s?.round ?? 0,
        modelVersion: s?.modelVersion ?? 0,
        nodes: { total: data.nodes.length, active: 1, training: 1, failed: 1 },
        session: s ? { ...s, config: { ...s.config } } : null,
        startedAt: T0,
        now: T0 + 5000,
      };
    },
    modelIdentity() {
      const s = data.session;
      return s ? { sessionId: s.id, modelVersion: s.modelVersion, paramCount: 4, checksum: 0x1234_5678 } : { sessionId: null, modelVersion: 0, paramCount: 0, checksum: null };
    },
    dashboard() {
      return {
        status: control.status(),
        nodes: control.nodes(),
        metrics: data.history.slice(),
        logs: [{ at: T0, level: 'info', message: 'coordinator started' }],
        timeline: data.events.slice(),
      };
    },
    nodes: () => data.nodes.map((n) => ({ ...n })),
    node: (id) => data.nodes.find((n) => n.id === id) ?? null,
    async metrics(sessionId, limit = 10_000) {
      control.lastMetricsCall = { sessionId, limit };
      const history = data.history.slice(-limit);
      return { latest: history.at(-1) ?? null, history };
    },
    sessions: async (limit) => (data.session ? [data.session] : []).slice(0, limit),
    session: async (id) => sessionOf(id),
    rounds: async (id, range) => data.rounds.filter((r) => r.sessionId === id && (!range || (r.round > range.afterRound && r.round <= range.afterRound + range.rounds))),
    contributions: async (id, range) =>
      data.contributions.filter((c) => c.sessionId === id && (!range || (c.round > range.afterRound && c.round <= range.afterRound + range.rounds))),
    checkpoints: async (id) => data.checkpoints.filter((c) => c.sessionId === id),
    sessionEvents: async (id) => data.events.filter((e) => e.sessionId === id),
    async modelFiles(id, round, weightsPath) {
      const s = sessionOf(id);
      const checkpoint = round === null ? data.checkpoints.filter((c) => c.sessionId === id).at(-1) : data.checkpoints.find((c) => c.sessionId === id && c.round === round);
      if (!s || !checkpoint) throw new RequestError('NOT_FOUND', `session ${id} has no checkpoint${round === null ? '' : ` at round ${round}`}`);
      const spec = modelSpec(s.config.model);
      return exportLayersModel(spec, initialParams(spec, 1), { weightsPath, metadata: { sessionId: id, round: checkpoint.round } });
    },
    datasets: async () => [{ id: 'mnist', trainSize: 60_000, testSize: 10_000, inputShape: [28, 28, 1] }],
    async ledger(id): Promise<LedgerReport> {
      const s = sessionOf(id);
      if (!s) throw new RequestError('NOT_FOUND', `session ${id} does not exist`);
      return {
        ok: true,
        problems: [],
        sessionId: id,
        state: s.state,
        appliedRounds: data.rounds.length,
        modelVersion: s.modelVersion,
        appliedUpdates: data.contributions.length,
        appliedSamples: 256,
        roundSamples: 256,
        modelSamples: 256,
        duplicates: 0,
        rejectedUpdates: 1,
        rejectedByReason: { STALE_ROUND: 1 },
        epochs: [{ epoch: 0, covered: 256, overlapping: 0, pending: 0, skipped: 0 }],
      };
    },
    async start(input: SessionConfigInput) {
      if (data.session && (data.session.state === 'running' || data.session.state === 'paused')) {
        throw new RequestError('CONFLICT', `session ${data.session.id} is ${data.session.state}; stop it before starting another`);
      }
      const id = (data.session?.id ?? 0) + 1;
      data.session = {
        id,
        state: 'running',
        config: resolveSessionConfig(input),
        round: 2,
        modelVersion: 2,
        epoch: 0,
        totalSamples: 256,
        startedAt: T0,
        endedAt: null,
        lastTestAccuracy: null,
        lastTestLoss: null,
        lastRoundDurationMs: 100,
        samplesPerSecond: 1280,
        message: null,
      };
      data.rounds = [1, 2].map((round) => ({
        sessionId: id,
        round,
        modelVersion: round,
        openedAt: T0 + round * 100,
        closedAt: T0 + round * 100 + 90,
        applied: true,
        updates: 1,
        samples: 128,
        trainLoss: 1 / round,
        failures: 0,
        totalSamples: 128 * round,
        cursor: { epoch: 0, position: 128 * round, pending: [{ epoch: 0, start: 0, count: 0 }] },
      }));
      data.contributions = [
        { sessionId: id, round: 1, nodeId: 1, attempt: 1, samples: 128, epoch: 0, shardStart: 0, shardCount: 128, checksum: 0xdeadbeef, trainLoss: 1, status: 'applied', reason: null, receivedAt: T0 + 150 },
        { sessionId: id, round: 2, nodeId: 2, attempt: 1, samples: 128, epoch: 0, shardStart: 0, shardCount: 0, checksum: 1, trainLoss: Number.NaN, status: 'rejected', reason: 'STALE_ROUND: late', receivedAt: T0 + 250 },
      ];
      data.checkpoints = [{ sessionId: id, round: 2, modelVersion: 2, sha256: 'ab'.repeat(32), path: '/tmp/ckpt-2.bin', bytes: 4096, createdAt: T0 + 300 }];
      data.events = [
        { sessionId: id, at: T0, round: 0, kind: 'session-started', message: 'session started', nodeId: null, detail: null },
        { sessionId: id, at: T0 + 10, round: 1, kind: 'node-joined', message: 'node-1 joined', nodeId: 1, detail: { backend: 'wasm', rejoined: false, samples: 3, note: null } },
      ];
      return { ...data.session };
    },
    pause: async () => transition('pause', 'running', 'paused'),
    async kick(nodeId) {
      const node = data.nodes.find((n) => n.id === nodeId);
      if (!node) throw new RequestError('NOT_FOUND', `node ${nodeId} is not known to this coordinator`);
      Object.assign(node, { status: 'failed', statusReason: 'kicked by the operator', currentRound: null });
    },
    resume: async () => transition('resume', 'paused', 'running'),
    stop: async () => transition('stop', null, 'stopped'),
  };
  function transition(verb: string, from: SessionSnapshot['state'] | null, to: SessionSnapshot['state']): SessionSnapshot {
    const s = data.session;
    if (!s) throw new RequestError('CONFLICT', `there is no session to ${verb}; start one first`);
    const allowed = from === null ? s.state === 'running' || s.state === 'paused' : s.state === from;
    if (!allowed) throw new RequestError('CONFLICT', `cannot ${verb} session ${s.id}: it is ${s.state}`);
    s.state = to;
    if (to === 'stopped') s.endedAt = T0 + 9000;
    return { ...s };
  }
  return control;
}
