// Behaviour every TrainingRepository must show, run against the in-memory fake (tests/unit) and the Prisma +
// SQLite adapter (tests/integration). When the two disagree, the fake is what service tests believe, so fix
// whichever side is wrong here rather than in one adapter's own test.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CommittedEvent, OutboxRecord } from '../../src/server/core/engine/committed';
import type { TrainingRepository } from '../../src/server/core/ports';
import {
  DEFAULT_OPTIMIZER,
  type CheckpointRecord,
  type ContributionRecord,
  type MetricPoint,
  type NodeCapabilities,
  type RoundSummary,
  type SessionConfig,
  type SessionEvent,
  type SessionSnapshot,
  type SessionState,
} from '../../src/server/core/types';

// A fixed, realistic epoch (2026-01-01T00:00:00Z) rather than Date.now(): tests must not read the clock.
export const T0 = Date.UTC(2026, 0, 1);

export const sampleConfig: SessionConfig = {
  model: 'mlp',
  dataset: 'mnist',
  optimizer: DEFAULT_OPTIMIZER.adam,
  batchSize: 64,
  maxRounds: null,
  targetAccuracy: 0.97,
  evalEvery: 5,
  checkpointEvery: 10,
  seed: 42,
  roundTimeoutMs: 30_000,
  minUpdates: 1,
  minCompletion: 0.5,
  maxSamples: null,
  maxUpdateNorm: 1e5,
};

export const sampleCapabilities = (overrides: Partial<NodeCapabilities> = {}): NodeCapabilities => ({
  backend: 'wasm',
  device: 'cpu',
  samplesPerSecond: 5000.5,
  agentVersion: '0.1.0',
  hostname: 'box-1',
  ...overrides,
});

export function roundOf(sessionId: number, round: number, overrides: Partial<RoundSummary> = {}): RoundSummary {
  return {
    sessionId,
    round,
    modelVersion: round,
    openedAt: T0 + round * 1000,
    closedAt: T0 + round * 1000 + 750,
    applied: true,
    updates: 2,
    samples: 128,
    trainLoss: 0.6931471805599453,
    failures: 0,
    totalSamples: 128 * round,
    cursor: { epoch: 0, position: 128 * round, pending: [] },
    ...overrides,
  };
}

/** The session as the coordinator would write it with `round` (recordRound's last argument). */
export function sessionAfter(round: RoundSummary, overrides: Partial<SessionSnapshot> = {}): SessionSnapshot {
  return {
    id: round.sessionId,
    state: 'running',
    config: sampleConfig,
    round: round.round,
    modelVersion: round.modelVersion,
    epoch: round.cursor.epoch,
    totalSamples: round.totalSamples,
    startedAt: T0,
    endedAt: null,
    lastTestAccuracy: null,
    lastTestLoss: null,
    lastRoundDurationMs: round.closedAt - round.openedAt,
    samplesPerSecond: 170.5,
    message: null,
    ...overrides,
  };
}

export function eventOf(sessionId: number, round: number, overrides: Partial<SessionEvent> = {}): SessionEvent {
  return {
    sessionId,
    at: T0 + round * 1000 + 10,
    round,
    kind: 'node-joined',
    message: `node joined in round ${round}`,
    nodeId: null,
    detail: null,
    ...overrides,
  };
}

export function contributionOf(
  sessionId: number,
  round: number,
  nodeId: number,
  overrides: Partial<ContributionRecord> = {},
): ContributionRecord {
  return {
    sessionId,
    round,
    nodeId,
    attempt: 1,
    samples: 64,
    epoch: 0,
    shardStart: 64 * nodeId,
    shardCount: 64,
    checksum: 0xdeadbeef,
    trainLoss: 0.5 + nodeId / 1000,
    status: 'applied',
    reason: null,
    receivedAt: T0 + round * 1000 + 100 + nodeId,
    ...overrides,
  };
}

export function metricOf(round: number, overrides: Partial<MetricPoint> = {}): MetricPoint {
  return {
    round,
    at: T0 + round * 1000 + 800,
    trainLoss: 0.42,
    testLoss: null,
    testAccuracy: null,
    samples: 128,
    totalSamples: 128 * round,
    samplesPerSecond: 170.66666666666666,
    roundDurationMs: 750,
    nodes: 2,
    ...overrides,
  };
}

export function checkpointOf(sessionId: number, round: number, overrides: Partial<CheckpointRecord> = {}): CheckpointRecord {
  const sha256 = (round.toString(16).padStart(2, '0') + 'ab').repeat(16).slice(0, 64);
  return {
    sessionId,
    round,
    modelVersion: round,
    sha256,
    path: `/data/checkpoints/${sha256}.ckpt`,
    bytes: 3_200_064,
    createdAt: T0 + round * 1000 + 900,
    ...overrides,
  };
}

// Committed events as an engine would write them beside the rows of a commit.
type EventOf<K extends CommittedEvent['kind']> = Extract<CommittedEvent, { kind: K }>;

export function started(sessionId: number, at = T0): EventOf<'session-started'> {
  return { kind: 'session-started', sessionId, at, config: sampleConfig, trainSize: 60_000, paramCount: 109_386 };
}

export function roundCommitted(round: RoundSummary, metric: MetricPoint): EventOf<'round-committed'> {
  return {
    kind: 'round-committed',
    sessionId: round.sessionId,
    round: round.round,
    applied: round.applied,
    modelVersion: round.modelVersion,
    samples: round.samples,
    totalSamples: round.totalSamples,
    epoch: round.cursor.epoch,
    cursor: round.cursor,
    metric,
  };
}

export function credited(sessionId: number, round: number, nodeId: number, status: 'applied' | 'rejected', samples: number): EventOf<'node-credited'> {
  return { kind: 'node-credited', sessionId, round, nodeId, status, samples };
}

export function stateChanged(sessionId: number, state: SessionState, at: number): EventOf<'session-state-changed'> {
  const ended = state === 'stopped' || state === 'completed' || state === 'failed';
  return { kind: 'session-state-changed', sessionId, at, state, message: ended ? `session ${state}` : null, endedAt: ended ? at : null };
}

export function describeRepositoryConformance(name: string, makeRepo: () => Promise<TrainingRepository>): void {
  describe(`TrainingRepository conformance: ${name}`, () => {
    let repo: TrainingRepository;

    beforeEach(async () => {
      repo = await makeRepo();
    });

    afterEach(async () => {
      await repo.close();
    });

    // recordRound with the session snapshot a coordinator would write alongside (most cases do not care).
    function record(round: RoundSummary, contributions: ContributionRecord[], metric: MetricPoint | null): Promise<OutboxRecord[]> {
      return repo.recordRound(round, contributions, metric, sessionAfter(round));
    }

    async function sessionWithNodes(count: number): Promise<{ sessionId: number; nodeIds: number[] }> {
      const sessionId = await repo.createSession(sampleConfig, T0);
      const nodeIds: number[] = [];
      for (let i = 0; i < count; i++) nodeIds.push(await repo.upsertNode(`node-${i}`, sampleCapabilities({ hostname: `box-${i}` }), T0));
      return { sessionId, nodeIds };
    }

    describe('sessions', () => {
      it('creates a session in the idle state with zeroed counters and reads it back', async () => {
        const id = await repo.createSession(sampleConfig, T0);
        expect(await repo.getSession(id)).toEqual({
          id,
          state: 'idle',
          config: sampleConfig,
          round: 0,
          modelVersion: 0,
          epoch: 0,
          totalSamples: 0,
          startedAt: T0,
          endedAt: null,
          lastTestAccuracy: null,
          lastTestLoss: null,
          lastRoundDurationMs: null,
          samplesPerSecond: 0,
          message: null,
        } satisfies SessionSnapshot);
      });

      it('returns null for a session that does not exist', async () => {
        expect(await repo.getSession(9999)).toBeNull();
      });

      it('updates every field of a session, including counters beyond 32 bits', async () => {
        const id = await repo.createSession(sampleConfig, T0);
        const updated: SessionSnapshot = {
          id,
          state: 'completed',
          config: { ...sampleConfig, model: 'cnn', maxRounds: 500, optimizer: DEFAULT_OPTIMIZER.sgd },
          round: 500,
          modelVersion: 480,
          epoch: 7,
          totalSamples: 2 ** 40 + 3,
          startedAt: T0 + 1,
          endedAt: T0 + 3_600_000,
          lastTestAccuracy: 0.9712,
          lastTestLoss: 0.0987654321,
          lastRoundDurationMs: 812,
          samplesPerSecond: 12_345.678,
          message: 'reached target accuracy',
        };
        await repo.updateSession(updated);
        expect(await repo.getSession(id)).toEqual(updated);
      });

      it('round-trips every config field, and refuses config values JSON cannot store faithfully', async () => {
        const config: SessionConfig = { ...sampleConfig, minCompletion: 0.75, maxSamples: 60_000 * 20, maxUpdateNorm: 1234.5 };
        const id = await repo.createSession(config, T0);
        expect((await repo.getSession(id))!.config).toEqual(config);
        // JSON writes Infinity and NaN as null: refused rather than read back as something else.
        await expect(repo.createSession({ ...sampleConfig, maxUpdateNorm: Number.POSITIVE_INFINITY }, T0)).rejects.toMatchObject({
          code: 'BAD_REQUEST',
        });
        const session = (await repo.getSession(id))!;
        await expect(
          repo.updateSession({ ...session, config: { ...config, optimizer: { ...config.optimizer, learningRate: Number.NaN } } }),
        ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        expect((await repo.getSession(id))!.config).toEqual(config);
      });

      it('refuses to update a session that does not exist', async () => {
        const id = await repo.createSession(sampleConfig, T0);
        const session = (await repo.getSession(id))!;
        await expect(repo.updateSession({ ...session, id: id + 100 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
      });

      it('lists sessions newest first, up to the limit', async () => {
        const ids = [];
        for (let i = 0; i < 4; i++) ids.push(await repo.createSession(sampleConfig, T0 + i));
        expect(new Set(ids).size).toBe(4);
        const listed = await repo.listSessions(3);
        expect(listed.map((s) => s.id)).toEqual([ids[3], ids[2], ids[1]]);
        expect(listed[0].startedAt).toBe(T0 + 3);
        expect(await repo.listSessions(0)).toEqual([]);
      });

      it('finds the most recent running or paused session to resume', async () => {
        expect(await repo.findResumableSession()).toBeNull();
        const states = ['running', 'paused', 'stopped', 'completed', 'failed', 'idle'] as const;
        const ids: number[] = [];
        for (const state of states) {
          const id = await repo.createSession(sampleConfig, T0);
          await repo.updateSession({ ...(await repo.getSession(id))!, state });
          ids.push(id);
        }
        // The paused session (second) is newer than the running one; later ones are not resumable.
        expect((await repo.findResumableSession())?.id).toBe(ids[1]);
        await repo.updateSession({ ...(await repo.getSession(ids[1]))!, state: 'stopped' });
        expect((await repo.findResumableSession())?.id).toBe(ids[0]);
        await repo.updateSession({ ...(await repo.getSession(ids[0]))!, state: 'failed' });
        expect(await repo.findResumableSession()).toBeNull();
      });
    });

    describe('nodes', () => {
      it('gives the same id back for the same name, and different ids to different names', async () => {
        const a = await repo.upsertNode('alpha', sampleCapabilities(), T0);
        const b = await repo.upsertNode('beta', sampleCapabilities(), T0 + 1);
        const again = await repo.upsertNode('alpha', sampleCapabilities({ backend: 'cpu', samplesPerSecond: 800 }), T0 + 2);
        expect(again).toBe(a);
        expect(b).not.toBe(a);
      });

      it('refuses a node without a name', async () => {
        await expect(repo.upsertNode('', sampleCapabilities(), T0)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      });

      it('keeps a node credential: none for a new name, the stored hash after it is set', async () => {
        expect(await repo.nodeCredential('gamma')).toBeNull();
        const id = await repo.upsertNode('gamma', sampleCapabilities(), T0);
        expect(await repo.nodeCredential('gamma')).toEqual({ id, tokenHash: null });
        const hash = 'ab'.repeat(32);
        expect(await repo.setNodeTokenHash(id, hash)).toBe(true);
        await repo.upsertNode('gamma', sampleCapabilities({ backend: 'cpu' }), T0 + 5);
        expect(await repo.nodeCredential('gamma')).toEqual({ id, tokenHash: hash });
        await expect(repo.setNodeTokenHash(id, 'not-a-hash')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(repo.setNodeTokenHash(9999, hash)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      });

      it('sets a token hash only while none is set: of two claims, the second is refused and changes nothing', async () => {
        const id = await repo.upsertNode('delta', sampleCapabilities(), T0);
        const [first, second] = await Promise.all([repo.setNodeTokenHash(id, 'ab'.repeat(32)), repo.setNodeTokenHash(id, 'cd'.repeat(32))]);
        expect([first, second]).toEqual([true, false]);
        expect(await repo.nodeCredential('delta')).toEqual({ id, tokenHash: 'ab'.repeat(32) });
      });

      it('prunes only nodes never credited and not seen since the cutoff', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        await repo.recordRejection(contributionOf(sessionId, 1, nodeIds[0], { status: 'rejected', reason: 'CHECKSUM' }));
        const idle = await repo.upsertNode('idle', sampleCapabilities(), T0);
        const recent = await repo.upsertNode('recent', sampleCapabilities(), T0 + 10_000);
        expect(await repo.pruneIdleNodes(T0 + 5_000)).toBe(1);
        expect(await repo.nodeCredential('idle')).toBeNull();
        expect(await repo.nodeCredential('recent')).toEqual({ id: recent, tokenHash: null });
        expect((await repo.nodeCredential('node-0'))?.id).toBe(nodeIds[0]);
        // A name freed by pruning gets a new id: nothing of the old node is inherited.
        expect(await repo.upsertNode('idle', sampleCapabilities(), T0 + 20_000)).not.toBe(idle);
        expect(await repo.pruneIdleNodes(T0)).toBe(0);
      });
    });

    describe('join tokens', () => {
      const hashA = '01'.repeat(32);
      const hashB = '02'.repeat(32);

      it('stores a token by hash, finds it, lists it without the hash, and revokes it once', async () => {
        const a = await repo.createJoinToken({ tokenHash: hashA, label: 'pool', nodeName: null, createdAt: T0, expiresAt: null });
        const b = await repo.createJoinToken({ tokenHash: hashB, label: 'one box', nodeName: 'box-1', createdAt: T0 + 1, expiresAt: T0 + 60_000 });
        expect(a).toEqual({ id: a.id, label: 'pool', nodeName: null, createdAt: T0, expiresAt: null, revokedAt: null });
        expect(b.nodeName).toBe('box-1');
        expect(b.expiresAt).toBe(T0 + 60_000);
        expect(await repo.joinTokenByHash(hashA)).toEqual(a);
        expect(await repo.joinTokenByHash('03'.repeat(32))).toBeNull();
        const listed = await repo.listJoinTokens();
        expect(listed).toEqual([a, b]);
        expect(JSON.stringify(listed)).not.toContain(hashA);
        expect((await repo.revokeJoinToken(a.id, T0 + 5))?.revokedAt).toBe(T0 + 5);
        expect((await repo.revokeJoinToken(a.id, T0 + 9))?.revokedAt).toBe(T0 + 5);
        expect((await repo.joinTokenByHash(hashA))?.revokedAt).toBe(T0 + 5);
        expect(await repo.revokeJoinToken(9999, T0)).toBeNull();
      });

      it('refuses a malformed hash, a bad node name and a label with control characters', async () => {
        await expect(repo.createJoinToken({ tokenHash: 'nope', label: 'x', nodeName: null, createdAt: T0, expiresAt: null })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(repo.createJoinToken({ tokenHash: hashA, label: 'x', nodeName: 'bad name!', createdAt: T0, expiresAt: null })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(repo.createJoinToken({ tokenHash: hashA, label: 'a\u001b[31m', nodeName: null, createdAt: T0, expiresAt: null })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        expect(await repo.listJoinTokens()).toEqual([]);
      });
    });

    describe('rounds and contributions', () => {
      it('records a round with its contributions and metric, and reads them back exactly', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(3);
        const round = roundOf(sessionId, 1, { updates: 3, samples: 192 });
        // Outlier scores and clipping scales: kept exactly when present, absent (not null, not 0) when the round
        // was not scored or the update counted as sent. A scale of 0 is a value.
        const extras = [{ outlierScore: 0.8, scale: 0.25 }, { outlierScore: 1.05 }, { scale: 0 }];
        const contributions = nodeIds.map((nodeId, i) => contributionOf(sessionId, 1, nodeId, { checksum: 0xffffffff - nodeId, ...extras[i] }));
        const metric = metricOf(1, { testLoss: 0.31, testAccuracy: 0.912, totalSamples: 2 ** 33 });
        await record(round, contributions, metric);

        expect(await repo.listRounds(sessionId)).toEqual([round]);
        expect(await repo.listContributions(sessionId)).toEqual(contributions);
        expect(await repo.listMetrics(sessionId, 10)).toEqual([metric]);
      });

      it('records a round without a metric and a round nobody contributed to', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        await record(roundOf(sessionId, 1), [contributionOf(sessionId, 1, nodeIds[0])], null);
        const empty = roundOf(sessionId, 2, { applied: false, updates: 0, samples: 0, trainLoss: 0, failures: 2 });
        await record(empty, [], metricOf(2, { samples: 0, nodes: 0 }));
        expect(await repo.listRounds(sessionId)).toEqual([roundOf(sessionId, 1), empty]);
        expect((await repo.listMetrics(sessionId, 10)).map((m) => m.round)).toEqual([2]);
      });

      it('lists rounds in round order and keeps sessions apart', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const other = await repo.createSession(sampleConfig, T0);
        for (const r of [3, 1, 2]) await record(roundOf(sessionId, r), [contributionOf(sessionId, r, nodeIds[0])], metricOf(r));
        await record(roundOf(other, 1), [contributionOf(other, 1, nodeIds[0])], metricOf(1));
        expect((await repo.listRounds(sessionId)).map((r) => r.round)).toEqual([1, 2, 3]);
        expect((await repo.listContributions(sessionId)).map((c) => c.round)).toEqual([1, 2, 3]);
        expect((await repo.listRounds(other)).map((r) => r.sessionId)).toEqual([other]);
        expect(await repo.listContributions(other)).toHaveLength(1);
        expect(await repo.listRounds(9999)).toEqual([]);
      });

      it('rejects recording the same round twice and leaves the first recording untouched', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(2);
        const first = nodeIds.map((nodeId) => contributionOf(sessionId, 1, nodeId));
        await record(roundOf(sessionId, 1), first, metricOf(1));

        const second = [contributionOf(sessionId, 1, nodeIds[0], { samples: 999 })];
        await expect(
          record(roundOf(sessionId, 1, { samples: 999 }), second, metricOf(1, { samples: 999 })),
        ).rejects.toMatchObject({ code: 'CONFLICT' });

        expect(await repo.listRounds(sessionId)).toEqual([roundOf(sessionId, 1)]);
        expect(await repo.listContributions(sessionId)).toEqual(first);
        expect(await repo.listMetrics(sessionId, 10)).toEqual([metricOf(1)]);
      });

      it('rejects two contributions of one node in one round and writes nothing of that round', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const twice = [contributionOf(sessionId, 1, nodeIds[0]), contributionOf(sessionId, 1, nodeIds[0], { attempt: 2 })];
        await expect(record(roundOf(sessionId, 1), twice, metricOf(1))).rejects.toMatchObject({ code: 'CONFLICT' });
        expect(await repo.listRounds(sessionId)).toEqual([]);
        expect(await repo.listContributions(sessionId)).toEqual([]);
        expect(await repo.listMetrics(sessionId, 10)).toEqual([]);
        // The round can still be recorded correctly afterwards.
        await record(roundOf(sessionId, 1), twice.slice(0, 1), metricOf(1));
        expect(await repo.listRounds(sessionId)).toHaveLength(1);
      });

      it('rejects a round that refers to an unknown session or node, writing nothing', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        await expect(record(roundOf(9999, 1), [], null)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(
          record(roundOf(sessionId, 1), [contributionOf(sessionId, 1, nodeIds[0]), contributionOf(sessionId, 1, 9999)], metricOf(1)),
        ).rejects.toMatchObject({ code: 'NOT_FOUND' });
        expect(await repo.listRounds(sessionId)).toEqual([]);
        expect(await repo.listContributions(sessionId)).toEqual([]);
        expect(await repo.listMetrics(sessionId, 10)).toEqual([]);
      });

      it('refuses contributions or a metric that belong to another round', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        await expect(record(roundOf(sessionId, 1), [contributionOf(sessionId, 2, nodeIds[0])], null)).rejects.toMatchObject({
          code: 'BAD_REQUEST',
        });
        await expect(record(roundOf(sessionId, 1), [], metricOf(2))).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        expect(await repo.listRounds(sessionId)).toEqual([]);
      });

      it('refuses values the databases cannot store faithfully (NaN, Infinity, fractions, 32-bit overflow)', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const c = contributionOf(sessionId, 1, nodeIds[0]);
        const cases: Array<[RoundSummary, ContributionRecord[], MetricPoint | null]> = [
          [roundOf(sessionId, 1, { trainLoss: Number.NaN }), [c], null],
          [roundOf(sessionId, 1), [c], metricOf(1, { samplesPerSecond: Number.POSITIVE_INFINITY })],
          [roundOf(sessionId, 1), [{ ...c, samples: 12.5 }], null],
          [roundOf(sessionId, 1, { samples: 2 ** 31 }), [c], null],
          [roundOf(sessionId, 1, { closedAt: T0 + 0.5 }), [c], null],
          [roundOf(sessionId, 1, { totalSamples: 2 ** 53 }), [c], null],
          [roundOf(sessionId, 1, { cursor: { epoch: 0, position: 1.5, pending: [] } }), [c], null],
          [roundOf(sessionId, 1, { cursor: { epoch: 0, position: 0, pending: [{ epoch: 0, start: 0, count: Number.NaN }] } }), [c], null],
          [roundOf(sessionId, 1), [{ ...c, shardStart: 2 ** 31 }], null],
          [roundOf(sessionId, 1), [{ ...c, epoch: 0.5 }], null],
          // A clipping scale is a factor in [0, 1), and only an applied update has one.
          [roundOf(sessionId, 1), [{ ...c, scale: 1 }], null],
          [roundOf(sessionId, 1), [{ ...c, scale: -0.25 }], null],
          [roundOf(sessionId, 1), [{ ...c, scale: Number.NaN }], null],
          [roundOf(sessionId, 1, { applied: false }), [{ ...c, status: 'rejected', reason: 'QUORUM_NOT_MET: x', scale: 0.5 }], null],
        ];
        for (const [round, contributions, metric] of cases) {
          await expect(record(round, contributions, metric)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        }
        expect(await repo.listRounds(sessionId)).toEqual([]);
      });

      it('returns the newest metrics up to the limit, oldest first', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        for (let r = 1; r <= 5; r++) {
          await record(roundOf(sessionId, r), [contributionOf(sessionId, r, nodeIds[0])], metricOf(r, { trainLoss: 1 / r }));
        }
        expect((await repo.listMetrics(sessionId, 3)).map((m) => m.round)).toEqual([3, 4, 5]);
        expect((await repo.listMetrics(sessionId, 100)).map((m) => m.round)).toEqual([1, 2, 3, 4, 5]);
        expect(await repo.listMetrics(sessionId, 0)).toEqual([]);
      });

      it('fills in the test figures of a recorded metric once evaluation is done, and only those', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        await record(roundOf(sessionId, 5), [contributionOf(sessionId, 5, nodeIds[0])], metricOf(5));
        await repo.recordEvaluation(sessionId, 5, 0.2875, 0.9431);
        expect(await repo.listMetrics(sessionId, 10)).toEqual([metricOf(5, { testLoss: 0.2875, testAccuracy: 0.9431 })]);
        // A later evaluation of the same round replaces the figures.
        await repo.recordEvaluation(sessionId, 5, 0.25, 0.95);
        expect(await repo.listMetrics(sessionId, 10)).toEqual([metricOf(5, { testLoss: 0.25, testAccuracy: 0.95 })]);
      });

      it('refuses an evaluation of a round without a metric, or with non-finite figures', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        await record(roundOf(sessionId, 1), [contributionOf(sessionId, 1, nodeIds[0])], null);
        await expect(repo.recordEvaluation(sessionId, 1, 0.3, 0.9)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(repo.recordEvaluation(sessionId, 2, 0.3, 0.9)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(repo.recordEvaluation(9999, 1, 0.3, 0.9)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await record(roundOf(sessionId, 2), [contributionOf(sessionId, 2, nodeIds[0])], metricOf(2));
        await expect(repo.recordEvaluation(sessionId, 2, Number.NaN, 0.9)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        expect(await repo.listMetrics(sessionId, 10)).toEqual([metricOf(2)]);
      });

      it('records a round of 100 contributions', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(100);
        const contributions = nodeIds.map((nodeId) => contributionOf(sessionId, 1, nodeId));
        await record(roundOf(sessionId, 1, { updates: 100, samples: 6400 }), contributions, metricOf(1));
        expect(await repo.listContributions(sessionId)).toEqual(contributions);
      });
    });

    describe('exactly-once accounting: recordRound writes the session in the same transaction', () => {
      it('stores the session snapshot passed with the round', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(2);
        const round = roundOf(sessionId, 1, { totalSamples: 2 ** 40 + 128 });
        const session = sessionAfter(round, { lastTestAccuracy: 0.5, message: 'training', samplesPerSecond: 9876.5 });
        await repo.recordRound(round, nodeIds.map((n) => contributionOf(sessionId, 1, n)), metricOf(1), session);
        expect(await repo.getSession(sessionId)).toEqual(session);
      });

      it('fails as a whole on a duplicate contribution: no round, contribution, rejection, metric, nor session change', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(2);
        const round1 = roundOf(sessionId, 1);
        await repo.recordRound(round1, [contributionOf(sessionId, 1, nodeIds[0])], metricOf(1), sessionAfter(round1));
        const before = await repo.getSession(sessionId);

        const round2 = roundOf(sessionId, 2, { updates: 2 });
        const contributions = [
          contributionOf(sessionId, 2, nodeIds[0]),
          contributionOf(sessionId, 2, nodeIds[1], { status: 'rejected', reason: 'NORM', epoch: 0, shardStart: 0, shardCount: 0 }),
          // The same node twice in one round: the unique key refuses it, after the session update was issued.
          contributionOf(sessionId, 2, nodeIds[0], { attempt: 2 }),
        ];
        await expect(
          repo.recordRound(round2, contributions, metricOf(2), sessionAfter(round2, { state: 'completed', endedAt: T0 + 5000 })),
        ).rejects.toMatchObject({ code: 'CONFLICT' });

        expect(await repo.getSession(sessionId)).toEqual(before);
        expect(await repo.listRounds(sessionId)).toEqual([round1]);
        expect(await repo.lastRound(sessionId)).toEqual(round1);
        expect(await repo.listContributions(sessionId)).toEqual([contributionOf(sessionId, 1, nodeIds[0])]);
        expect((await repo.listMetrics(sessionId, 10)).map((m) => m.round)).toEqual([1]);
      });

      it('fails as a whole when the round was already recorded, leaving the session as the first recording left it', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const round = roundOf(sessionId, 1);
        await repo.recordRound(round, [contributionOf(sessionId, 1, nodeIds[0])], null, sessionAfter(round));
        await expect(
          repo.recordRound(round, [], null, sessionAfter(round, { totalSamples: 999_999, round: 7 })),
        ).rejects.toMatchObject({ code: 'CONFLICT' });
        expect(await repo.getSession(sessionId)).toEqual(sessionAfter(round));
      });

      it('refuses a session snapshot of another session, or one it cannot store, writing nothing', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const other = await repo.createSession(sampleConfig, T0);
        const round = roundOf(sessionId, 1);
        const c = [contributionOf(sessionId, 1, nodeIds[0])];
        await expect(repo.recordRound(round, c, null, sessionAfter(round, { id: other }))).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(repo.recordRound(round, c, null, sessionAfter(round, { totalSamples: 0.5 }))).rejects.toMatchObject({
          code: 'BAD_REQUEST',
        });
        expect(await repo.listRounds(sessionId)).toEqual([]);
        expect((await repo.getSession(sessionId))!.state).toBe('idle');
        expect((await repo.getSession(other))!.state).toBe('idle');
      });

      it('returns the highest recorded round as the last one, with its data cursor intact', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const other = await repo.createSession(sampleConfig, T0);
        expect(await repo.lastRound(sessionId)).toBeNull();
        const cursor = {
          epoch: 3,
          position: 59_872,
          pending: [
            { epoch: 2, start: 59_936, count: 64 },
            { epoch: 3, start: 128, count: 64 },
          ],
        };
        const r3 = roundOf(sessionId, 3, { cursor, totalSamples: 2 ** 33 });
        const r2 = roundOf(sessionId, 2, { applied: false, updates: 0, samples: 0, modelVersion: 1 });
        for (const r of [roundOf(sessionId, 1), r3, r2]) {
          await repo.recordRound(r, r.applied ? [contributionOf(sessionId, r.round, nodeIds[0])] : [], null, sessionAfter(r));
        }
        await repo.recordRound(roundOf(other, 9), [], null, sessionAfter(roundOf(other, 9)));
        expect(await repo.lastRound(sessionId)).toEqual(r3);
        expect((await repo.lastRound(sessionId))!.cursor).toEqual(cursor);
        expect((await repo.lastRound(other))!.round).toBe(9);
        expect(await repo.lastRound(9999)).toBeNull();
      });

      it('stores exactly the cursor fields, whatever else the caller object carries', async () => {
        const { sessionId } = await sessionWithNodes(0);
        const cursor = { epoch: 1, position: 64, pending: [{ epoch: 0, start: 0, count: 64, node: 7 }], extra: 'x' };
        const round = roundOf(sessionId, 1, { cursor });
        await repo.recordRound(round, [], null, sessionAfter(round));
        const stored = (await repo.lastRound(sessionId))!.cursor;
        expect(stored).toStrictEqual({ epoch: 1, position: 64, pending: [{ epoch: 0, start: 0, count: 64 }] });
      });

      it('keeps the shard of every applied contribution', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(2);
        const contributions = [
          contributionOf(sessionId, 1, nodeIds[0], { epoch: 4, shardStart: 59_000, shardCount: 1000 }),
          contributionOf(sessionId, 1, nodeIds[1], { epoch: 5, shardStart: 0, shardCount: 1 }),
        ];
        await record(roundOf(sessionId, 1), contributions, null);
        expect(await repo.listContributions(sessionId)).toEqual(contributions);
      });

      it('puts rejected contributions of a round that missed its quorum in the rejection ledger', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(3);
        const round = roundOf(sessionId, 1, { applied: false, modelVersion: 0, updates: 0, samples: 0, totalSamples: 0 });
        const rejected = nodeIds.slice(0, 2).map((nodeId) =>
          contributionOf(sessionId, 1, nodeId, { status: 'rejected', reason: 'QUORUM', shardStart: 64 * nodeId }),
        );
        await repo.recordRound(round, rejected, metricOf(1, { samples: 0 }), sessionAfter(round));
        expect(await repo.listContributions(sessionId)).toEqual(rejected);
        expect((await repo.listContributions(sessionId)).every((c) => c.status === 'rejected')).toBe(true);
        // No applied contribution was written, so the same nodes can still be applied in a later round.
        await record(roundOf(sessionId, 2), [contributionOf(sessionId, 2, nodeIds[0])], null);
        expect(await repo.listContributions(sessionId)).toHaveLength(3);
      });
    });

    describe('events', () => {
      it('records events and lists them oldest first, with every field intact', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const events: SessionEvent[] = [
          eventOf(sessionId, 0, { kind: 'session-started', message: 'started' }),
          eventOf(sessionId, 3, { kind: 'node-joined', nodeId: nodeIds[0], detail: { backend: 'wasm', samplesPerSecond: 5000.5 } }),
          eventOf(sessionId, 4, {
            kind: 'round-not-applied',
            message: 'round 4 missed its quorum (1 of 3)',
            detail: { updates: 1, assigned: 3, quorum: true, reason: null },
          }),
          // Same timestamp as the previous one: recording order decides.
          eventOf(sessionId, 4, { kind: 'node-failed', nodeId: 9999, message: 'node 9999 failed' }),
        ];
        for (const e of events) await repo.recordEvent(e);
        expect(await repo.listEvents(sessionId, 100)).toEqual(events);
      });

      it('returns the newest events up to the limit, oldest first, per session', async () => {
        const { sessionId } = await sessionWithNodes(0);
        const other = await repo.createSession(sampleConfig, T0);
        for (let i = 1; i <= 6; i++) {
          await repo.recordEvent(eventOf(sessionId, i, { message: `event ${i}` }));
          await repo.recordEvent(eventOf(other, i, { message: `other ${i}` }));
        }
        expect((await repo.listEvents(sessionId, 3)).map((e) => e.message)).toEqual(['event 4', 'event 5', 'event 6']);
        expect((await repo.listEvents(other, 2)).map((e) => e.message)).toEqual(['other 5', 'other 6']);
        expect(await repo.listEvents(sessionId, 0)).toEqual([]);
        expect(await repo.listEvents(9999, 10)).toEqual([]);
      });

      it('refuses an event of an unknown session, of an unknown kind, or with a nested detail', async () => {
        await expect(repo.recordEvent(eventOf(9999, 1))).rejects.toMatchObject({ code: 'NOT_FOUND' });
        const { sessionId } = await sessionWithNodes(0);
        await expect(repo.recordEvent(eventOf(sessionId, 1, { kind: 'exploded' as SessionEvent['kind'] }))).rejects.toMatchObject({
          code: 'BAD_REQUEST',
        });
        const nested = { inner: { a: 1 } } as unknown as SessionEvent['detail'];
        await expect(repo.recordEvent(eventOf(sessionId, 1, { detail: nested }))).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(repo.recordEvent(eventOf(sessionId, 1, { detail: { norm: Number.POSITIVE_INFINITY } }))).rejects.toMatchObject({
          code: 'BAD_REQUEST',
        });
        await expect(repo.recordEvent(eventOf(sessionId, 1, { at: T0 + 0.5 }))).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        expect(await repo.listEvents(sessionId, 10)).toEqual([]);
      });
    });

    describe('rejections', () => {
      it('records several rejected updates of one node in one round, before or without the round', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(2);
        const stale = contributionOf(sessionId, 1, nodeIds[0], { status: 'rejected', reason: 'STALE_ROUND', receivedAt: T0 + 1100 });
        const dup = contributionOf(sessionId, 1, nodeIds[0], { status: 'rejected', reason: 'DUPLICATE', attempt: 2, receivedAt: T0 + 1200 });
        await repo.recordRejection(stale);
        await repo.recordRejection(dup);
        await repo.recordRejection(dup);
        expect(await repo.listContributions(sessionId)).toEqual([stale, dup, dup]);
      });

      it('serves a page of rounds: contributions and rounds after a round, at most so many rounds', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        for (let round = 1; round <= 6; round++) {
          await record(roundOf(sessionId, round, { updates: 1 }), [contributionOf(sessionId, round, nodeIds[0])], metricOf(round));
        }
        await repo.recordRejection(contributionOf(sessionId, 4, nodeIds[0], { status: 'rejected', reason: 'DUPLICATE' }));
        expect((await repo.listRounds(sessionId, { afterRound: 2, rounds: 3 })).map((r) => r.round)).toEqual([3, 4, 5]);
        const page = await repo.listContributions(sessionId, { afterRound: 3, rounds: 2 });
        expect(page.map((c) => [c.round, c.status])).toEqual([[4, 'applied'], [4, 'rejected'], [5, 'applied']]);
        expect(await repo.listRounds(sessionId, { afterRound: 6, rounds: 10 })).toEqual([]);
        expect(await repo.listContributions(sessionId)).toHaveLength(7);
      });

      it('lists applied and rejected updates together, by round then arrival', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(2);
        const late = contributionOf(sessionId, 1, nodeIds[1], { status: 'rejected', reason: 'STALE_ROUND', receivedAt: T0 + 5000 });
        const early = contributionOf(sessionId, 1, nodeIds[1], { status: 'rejected', reason: 'CHECKSUM', receivedAt: T0 + 1000 });
        await repo.recordRejection(late);
        await repo.recordRejection(early);
        const applied = contributionOf(sessionId, 1, nodeIds[0], { receivedAt: T0 + 1500 });
        await record(roundOf(sessionId, 1, { updates: 1 }), [applied], metricOf(1));
        const round2 = contributionOf(sessionId, 2, nodeIds[0], { status: 'rejected', reason: 'NOT_ASSIGNED', receivedAt: T0 });
        await repo.recordRejection(round2);
        expect(await repo.listContributions(sessionId)).toEqual([early, applied, late, round2]);
      });

      it('keeps rejected updates handed in with a round, alongside the applied one of the same node', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const applied = contributionOf(sessionId, 1, nodeIds[0]);
        const rejected = contributionOf(sessionId, 1, nodeIds[0], { status: 'rejected', reason: 'DUPLICATE', receivedAt: applied.receivedAt + 1 });
        await record(roundOf(sessionId, 1, { updates: 1 }), [applied, rejected], null);
        expect(await repo.listContributions(sessionId)).toEqual([applied, rejected]);
      });

      it('keeps the count of a row that stands for many identical rejections, and refuses a bad count', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const flood = contributionOf(sessionId, 3, nodeIds[0], { status: 'rejected', reason: 'FUTURE_ROUND: round 9 has not opened', count: 250 });
        await repo.recordRejection(flood);
        expect(await repo.listContributions(sessionId)).toEqual([flood]);
        for (const count of [0, 1.5, -2]) {
          await expect(repo.recordRejection({ ...flood, count })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        }
      });

      it('refuses applied updates, rejections without a reason, and unknown nodes', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        await expect(repo.recordRejection(contributionOf(sessionId, 1, nodeIds[0]))).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(
          repo.recordRejection(contributionOf(sessionId, 1, nodeIds[0], { status: 'rejected', reason: null })),
        ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(
          repo.recordRejection(contributionOf(sessionId, 1, 9999, { status: 'rejected', reason: 'NOT_REGISTERED' })),
        ).rejects.toMatchObject({ code: 'NOT_FOUND' });
        expect(await repo.listContributions(sessionId)).toEqual([]);
      });

      it('does not lose a rejection recorded while a duplicate round is being refused', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(2);
        await record(roundOf(sessionId, 1), [contributionOf(sessionId, 1, nodeIds[0])], metricOf(1));
        const rejection = contributionOf(sessionId, 2, nodeIds[1], { status: 'rejected', reason: 'FUTURE_ROUND' });
        const [duplicate, recorded] = await Promise.allSettled([
          record(roundOf(sessionId, 1), [contributionOf(sessionId, 1, nodeIds[1])], metricOf(1)),
          repo.recordRejection(rejection),
        ]);
        expect(duplicate.status).toBe('rejected');
        expect(recorded.status).toBe('fulfilled');
        expect((await repo.listContributions(sessionId)).filter((c) => c.status === 'rejected')).toEqual([rejection]);
      });
    });

    describe('checkpoints', () => {
      it('has no checkpoint before one is recorded', async () => {
        const { sessionId } = await sessionWithNodes(0);
        expect(await repo.latestCheckpoint(sessionId)).toBeNull();
        expect(await repo.listCheckpoints(sessionId)).toEqual([]);
      });

      it('returns the highest round as latest and lists in round order', async () => {
        const { sessionId } = await sessionWithNodes(0);
        const other = await repo.createSession(sampleConfig, T0);
        const c10 = checkpointOf(sessionId, 10, { bytes: 120_000_064 });
        const c30 = checkpointOf(sessionId, 30, { bytes: 2 ** 32 + 64 });
        const c20 = checkpointOf(sessionId, 20);
        for (const c of [c10, c30, c20]) await repo.recordCheckpoint(c);
        await repo.recordCheckpoint(checkpointOf(other, 99));
        expect(await repo.latestCheckpoint(sessionId)).toEqual(c30);
        expect(await repo.listCheckpoints(sessionId)).toEqual([c10, c20, c30]);
      });

      it('treats recording the same checkpoint again as a no-op', async () => {
        const { sessionId } = await sessionWithNodes(0);
        const c = checkpointOf(sessionId, 10);
        await repo.recordCheckpoint(c);
        await repo.recordCheckpoint({ ...c });
        expect(await repo.listCheckpoints(sessionId)).toEqual([c]);
      });

      it('prefers the later of two different checkpoints of the same round', async () => {
        const { sessionId } = await sessionWithNodes(0);
        const first = checkpointOf(sessionId, 10);
        const second = checkpointOf(sessionId, 10, { sha256: 'f'.repeat(64), path: `/data/checkpoints/${'f'.repeat(64)}.ckpt` });
        await repo.recordCheckpoint(first);
        await repo.recordCheckpoint(second);
        expect(await repo.latestCheckpoint(sessionId)).toEqual(second);
        expect(await repo.listCheckpoints(sessionId)).toEqual([first, second]);
      });

      it('deletes only the session\'s checkpoints before a round (retention) and returns them in round order', async () => {
        const { sessionId } = await sessionWithNodes(0);
        const other = await repo.createSession(sampleConfig, T0);
        const [c10, c20, c30] = [10, 20, 30].map((round) => checkpointOf(sessionId, round));
        for (const c of [c30, c10, c20]) await repo.recordCheckpoint(c);
        const foreign = checkpointOf(other, 5);
        await repo.recordCheckpoint(foreign);
        expect(await repo.deleteCheckpointsBefore(sessionId, 30)).toEqual([c10, c20]);
        expect(await repo.listCheckpoints(sessionId)).toEqual([c30]);
        expect(await repo.listCheckpoints(other)).toEqual([foreign]);
        expect(await repo.deleteCheckpointsBefore(sessionId, 30)).toEqual([]);
        expect(await repo.latestCheckpoint(sessionId)).toEqual(c30);
      });

      it('refuses a checkpoint of an unknown session or with a malformed hash', async () => {
        await expect(repo.recordCheckpoint(checkpointOf(9999, 1))).rejects.toMatchObject({ code: 'NOT_FOUND' });
        const { sessionId } = await sessionWithNodes(0);
        await expect(repo.recordCheckpoint(checkpointOf(sessionId, 1, { sha256: 'xyz' }))).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      });
    });

    describe('outbox: committed events written in the same transaction as their rows', () => {
      const all = () => repo.readOutbox(0, 1_000_000);

      function expectIncreasing(records: OutboxRecord[]): void {
        for (let i = 1; i < records.length; i++) expect(records[i].id).toBeGreaterThan(records[i - 1].id);
      }

      it('writes a round\'s events with its rows and returns them with increasing ids, in order', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(2);
        const round = roundOf(sessionId, 1, { cursor: { epoch: 1, position: 64, pending: [{ epoch: 0, start: 59_936, count: 64 }] } });
        const metric = metricOf(1, { testLoss: 0.3, testAccuracy: 0.91 });
        const events = [
          roundCommitted(round, metric),
          credited(sessionId, 1, nodeIds[0], 'applied', 64),
          credited(sessionId, 1, nodeIds[1], 'applied', 64),
          { kind: 'epoch-closed', sessionId, epoch: 0, round: 1 } satisfies CommittedEvent,
        ];
        const contributions = nodeIds.map((nodeId) => contributionOf(sessionId, 1, nodeId));
        const records = await repo.recordRound(round, contributions, metric, sessionAfter(round), events);
        expect(records.map((r) => r.event)).toEqual(events);
        expect(records[0].id).toBeGreaterThan(0);
        expectIncreasing(records);
        expect(await all()).toEqual(records);

        // Later commits continue the order, whatever method writes them.
        const stopped = stateChanged(sessionId, 'stopped', T0 + 9000);
        const fromUpdate = await repo.updateSession(sessionAfter(round, { state: 'stopped', endedAt: T0 + 9000 }), [stopped]);
        const rejection = contributionOf(sessionId, 2, nodeIds[1], { status: 'rejected', reason: 'STALE_ROUND' });
        const fromRejection = await repo.recordRejection(rejection, [credited(sessionId, 2, nodeIds[1], 'rejected', 0)]);
        expect(fromUpdate.map((r) => r.event)).toEqual([stopped]);
        expect(fromRejection.map((r) => r.event)).toEqual([credited(sessionId, 2, nodeIds[1], 'rejected', 0)]);
        const everything = [...records, ...fromUpdate, ...fromRejection];
        expectIncreasing(everything);
        expect(await all()).toEqual(everything);
        // ...and the rows went in with them.
        expect((await repo.getSession(sessionId))!.state).toBe('stopped');
        expect((await repo.listContributions(sessionId)).filter((c) => c.status === 'rejected')).toEqual([rejection]);
      });

      it('writes no outbox rows when a call brings no events, and returns none', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const round = roundOf(sessionId, 1);
        expect(await repo.recordRound(round, [contributionOf(sessionId, 1, nodeIds[0])], null, sessionAfter(round), [])).toEqual([]);
        expect(await repo.recordRound(roundOf(sessionId, 2), [], null, sessionAfter(roundOf(sessionId, 2)))).toEqual([]);
        expect(await repo.updateSession(sessionAfter(round))).toEqual([]);
        expect(await repo.recordRejection(contributionOf(sessionId, 3, nodeIds[0], { status: 'rejected', reason: 'X' }))).toEqual([]);
        expect(await all()).toEqual([]);
      });

      it('creates a session with the id the engine allocated, its started event in the same transaction', async () => {
        expect(await repo.lastSessionId()).toBe(0);
        const id = await repo.createSession(sampleConfig, T0, { id: 7, outbox: [started(7)] });
        expect(id).toBe(7);
        expect((await repo.getSession(7))!).toMatchObject({ id: 7, state: 'idle', config: sampleConfig, startedAt: T0 });
        expect(await all()).toEqual([{ id: expect.any(Number), event: started(7) }]);
        expect(await repo.lastSessionId()).toBe(7);
        // An id the database picks comes after the explicit one.
        expect(await repo.createSession(sampleConfig, T0)).toBe(8);
        expect(await repo.lastSessionId()).toBe(8);
        expect(await repo.createSession(sampleConfig, T0, { id: 9 })).toBe(9);
        expect(await repo.lastSessionId()).toBe(9);
      });

      it('refuses an explicit session id that is taken or not a positive integer, writing neither row nor event', async () => {
        await repo.createSession(sampleConfig, T0, { id: 3, outbox: [started(3)] });
        await expect(
          repo.createSession({ ...sampleConfig, seed: 7 }, T0 + 1, { id: 3, outbox: [started(3, T0 + 1)] }),
        ).rejects.toMatchObject({ code: 'CONFLICT' });
        for (const bad of [0, -1, 1.5, 2 ** 31]) {
          await expect(repo.createSession(sampleConfig, T0, { id: bad, outbox: [started(bad)] })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        }
        expect((await repo.getSession(3))!.config).toEqual(sampleConfig);
        expect((await repo.listSessions(10)).map((s) => s.id)).toEqual([3]);
        expect((await all()).map((r) => r.event)).toEqual([started(3)]);
      });

      it('reads after a position, oldest first, at most limit events', async () => {
        const { sessionId } = await sessionWithNodes(0);
        const session = (await repo.getSession(sessionId))!;
        const records: OutboxRecord[] = [];
        for (let i = 0; i < 5; i++) {
          records.push(...(await repo.updateSession({ ...session, state: 'running' }, [stateChanged(sessionId, 'running', T0 + i)])));
        }
        expectIncreasing(records);
        expect(await repo.readOutbox(0, 10)).toEqual(records);
        expect(await repo.readOutbox(records[1].id, 2)).toEqual(records.slice(2, 4));
        expect(await repo.readOutbox(records[3].id, 10)).toEqual(records.slice(4));
        expect(await repo.readOutbox(records[4].id, 10)).toEqual([]);
        expect(await repo.readOutbox(0, 0)).toEqual([]);
        await expect(repo.readOutbox(0, -1)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(repo.readOutbox(0.5, 10)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      });

      it('keeps a cursor per consumer: 0 for one never seen, the saved position after', async () => {
        expect(await repo.outboxCursor('live-view')).toBe(0);
        await repo.saveOutboxCursor('live-view', 5);
        await repo.saveOutboxCursor('settlement', 2);
        expect(await repo.outboxCursor('live-view')).toBe(5);
        expect(await repo.outboxCursor('settlement')).toBe(2);
        await repo.saveOutboxCursor('live-view', 9);
        expect(await repo.outboxCursor('live-view')).toBe(9);
        expect(await repo.outboxCursor('settlement')).toBe(2);
        expect(await repo.outboxCursor('evaluation')).toBe(0);
        await expect(repo.saveOutboxCursor('', 1)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(repo.saveOutboxCursor('live-view', -1)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(repo.saveOutboxCursor('live-view', 2.5)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(repo.outboxCursor('')).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        expect(await repo.outboxCursor('live-view')).toBe(9);
      });

      it('prunes up to a position, and never hands out a pruned id again', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const records: OutboxRecord[] = [];
        for (let r = 1; r <= 4; r++) {
          const rejection = contributionOf(sessionId, r, nodeIds[0], { status: 'rejected', reason: 'STALE_ROUND' });
          records.push(...(await repo.recordRejection(rejection, [credited(sessionId, r, nodeIds[0], 'rejected', 0)])));
        }
        expect(await repo.pruneOutbox(records[1].id)).toBe(2);
        expect(await all()).toEqual(records.slice(2));
        expect(await repo.pruneOutbox(records[1].id)).toBe(0);
        expect(await repo.pruneOutbox(records[3].id)).toBe(2);
        expect(await all()).toEqual([]);
        // The rows the events described stay: pruning only drops what every consumer has seen.
        expect(await repo.listContributions(sessionId)).toHaveLength(4);
        const [next] = await repo.recordRejection(
          contributionOf(sessionId, 5, nodeIds[0], { status: 'rejected', reason: 'STALE_ROUND' }),
          [credited(sessionId, 5, nodeIds[0], 'rejected', 0)],
        );
        expect(next.id).toBeGreaterThan(records[3].id);
        expect(await all()).toEqual([next]);
        await expect(repo.pruneOutbox(0.5)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      });

      it('writes no outbox events when recordRound fails: neither on a duplicate round nor on a duplicate contribution', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(2);
        const round1 = roundOf(sessionId, 1);
        const first = await repo.recordRound(round1, [contributionOf(sessionId, 1, nodeIds[0])], metricOf(1), sessionAfter(round1), [
          roundCommitted(round1, metricOf(1)),
          credited(sessionId, 1, nodeIds[0], 'applied', 64),
        ]);
        const session = await repo.getSession(sessionId);

        // The same round again, with its events: refused as a whole.
        await expect(
          repo.recordRound(round1, [contributionOf(sessionId, 1, nodeIds[1])], null, sessionAfter(round1, { round: 7 }), [
            roundCommitted(round1, metricOf(1)),
            credited(sessionId, 1, nodeIds[1], 'applied', 64),
          ]),
        ).rejects.toMatchObject({ code: 'CONFLICT' });
        // A duplicate contribution, refused after the session update and the round row were issued.
        const round2 = roundOf(sessionId, 2);
        await expect(
          repo.recordRound(
            round2,
            [contributionOf(sessionId, 2, nodeIds[0]), contributionOf(sessionId, 2, nodeIds[0], { attempt: 2 })],
            metricOf(2),
            sessionAfter(round2, { state: 'completed' }),
            [roundCommitted(round2, metricOf(2)), stateChanged(sessionId, 'completed', T0 + 5000)],
          ),
        ).rejects.toMatchObject({ code: 'CONFLICT' });

        expect(await all()).toEqual(first);
        expect(await repo.getSession(sessionId)).toEqual(session);
        expect(await repo.listRounds(sessionId)).toEqual([round1]);
        // The next commit takes the next position as if nothing had happened.
        const [after] = await repo.recordRound(round2, [], null, sessionAfter(round2), [roundCommitted(round2, metricOf(2))]);
        expect(after.id).toBeGreaterThan(first[1].id);
      });

      it('writes no outbox events when updateSession, recordRejection or createSession fail', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const session = (await repo.getSession(sessionId))!;
        await expect(
          repo.updateSession({ ...session, id: sessionId + 100 }, [stateChanged(sessionId + 100, 'running', T0)]),
        ).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(
          repo.recordRejection(contributionOf(sessionId, 1, 9999, { status: 'rejected', reason: 'X' }), [credited(sessionId, 1, 9999, 'rejected', 0)]),
        ).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(
          repo.recordRejection(contributionOf(9999, 1, nodeIds[0], { status: 'rejected', reason: 'X' }), [credited(9999, 1, nodeIds[0], 'rejected', 0)]),
        ).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(repo.createSession(sampleConfig, T0, { id: sessionId, outbox: [started(sessionId)] })).rejects.toMatchObject({
          code: 'CONFLICT',
        });
        expect(await all()).toEqual([]);
        expect(await repo.listContributions(sessionId)).toEqual([]);
      });

      it('does not lose the events of a call made while another call\'s transaction fails', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(2);
        const round1 = roundOf(sessionId, 1);
        await repo.recordRound(round1, [contributionOf(sessionId, 1, nodeIds[0])], null, sessionAfter(round1));
        const rejection = contributionOf(sessionId, 2, nodeIds[1], { status: 'rejected', reason: 'FUTURE_ROUND' });
        const [duplicate, recorded] = await Promise.allSettled([
          repo.recordRound(round1, [contributionOf(sessionId, 1, nodeIds[1])], null, sessionAfter(round1), [roundCommitted(round1, metricOf(1))]),
          repo.recordRejection(rejection, [credited(sessionId, 2, nodeIds[1], 'rejected', 0)]),
        ]);
        expect(duplicate.status).toBe('rejected');
        expect(recorded.status).toBe('fulfilled');
        expect((await all()).map((r) => r.event)).toEqual([credited(sessionId, 2, nodeIds[1], 'rejected', 0)]);
      });

      it('refuses events it could not read back faithfully, writing neither the rows nor the events', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const round = roundOf(sessionId, 1);
        const c = [contributionOf(sessionId, 1, nodeIds[0])];
        const badEvents: unknown[] = [
          { ...roundCommitted(round, metricOf(1)), metric: metricOf(1, { trainLoss: Number.NaN }) },
          { ...roundCommitted(round, metricOf(1)), totalSamples: 2 ** 53 },
          { ...roundCommitted(round, metricOf(1)), cursor: { epoch: 0, position: 1.5, pending: [] } },
          { kind: 'round-exploded', sessionId },
          { ...credited(sessionId, 1, nodeIds[0], 'applied', 64), status: 'maybe' },
          { ...credited(sessionId, 1, nodeIds[0], 'applied', 64), nodeId: undefined },
          { ...stateChanged(sessionId, 'running', T0), state: 'exploded' },
          { ...started(sessionId), config: { ...sampleConfig, maxUpdateNorm: Number.POSITIVE_INFINITY } },
          { ...started(sessionId), config: { ...sampleConfig, model: 'transformer' } },
          null,
        ];
        for (const bad of badEvents) {
          const outbox = [roundCommitted(round, metricOf(1)), bad as CommittedEvent];
          await expect(repo.recordRound(round, c, null, sessionAfter(round), outbox)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        }
        await expect(
          repo.updateSession(sessionAfter(round, { state: 'stopped' }), [{ ...stateChanged(sessionId, 'stopped', T0), at: T0 + 0.5 }]),
        ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        await expect(
          repo.createSession(sampleConfig, T0, { id: 50, outbox: [{ ...started(50), trainSize: Number.NaN }] }),
        ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        expect(await repo.listRounds(sessionId)).toEqual([]);
        expect((await repo.getSession(sessionId))!.state).toBe('idle');
        expect(await repo.getSession(50)).toBeNull();
        expect(await all()).toEqual([]);
      });

      it('stores exactly the fields of each event, whatever else the caller object carries', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const round = roundOf(sessionId, 1);
        const event = roundCommitted(round, metricOf(1));
        const noisy = {
          ...event,
          note: 'not part of the event',
          cursor: { ...event.cursor, extra: 1, pending: [{ epoch: 0, start: 0, count: 64, node: 7 }] },
          metric: { ...event.metric, debug: true },
        };
        const [record] = await repo.recordRound(round, [contributionOf(sessionId, 1, nodeIds[0])], null, sessionAfter(round), [noisy]);
        const clean = { ...event, cursor: { ...event.cursor, pending: [{ epoch: 0, start: 0, count: 64 }] } };
        expect(record.event).toStrictEqual(clean);
        expect((await all())[0].event).toStrictEqual(clean);
      });
    });
  });
}
