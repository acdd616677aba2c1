// Behaviour every TrainingRepository must show, run against the in-memory fake (tests/unit) and the Prisma +
// SQLite adapter (tests/integration). When the two disagree, the fake is what service tests believe, so fix
// whichever side is wrong here rather than in one adapter's own test.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TrainingRepository } from '../../src/server/core/ports';
import {
  DEFAULT_OPTIMIZER,
  type CheckpointRecord,
  type ContributionRecord,
  type MetricPoint,
  type NodeCapabilities,
  type RoundSummary,
  type SessionConfig,
  type SessionSnapshot,
} from '../../src/server/core/types';

// A fixed, realistic epoch (2026-01-01T00:00:00Z) rather than Date.now(): tests must not read the clock.
const T0 = Date.UTC(2026, 0, 1);

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

export function describeRepositoryConformance(name: string, makeRepo: () => Promise<TrainingRepository>): void {
  describe(`TrainingRepository conformance: ${name}`, () => {
    let repo: TrainingRepository;

    beforeEach(async () => {
      repo = await makeRepo();
    });

    afterEach(async () => {
      await repo.close();
    });

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
    });

    describe('rounds and contributions', () => {
      it('records a round with its contributions and metric, and reads them back exactly', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(3);
        const round = roundOf(sessionId, 1, { updates: 3, samples: 192 });
        const contributions = nodeIds.map((nodeId) => contributionOf(sessionId, 1, nodeId, { checksum: 0xffffffff - nodeId }));
        const metric = metricOf(1, { testLoss: 0.31, testAccuracy: 0.912, totalSamples: 2 ** 33 });
        await repo.recordRound(round, contributions, metric);

        expect(await repo.listRounds(sessionId)).toEqual([round]);
        expect(await repo.listContributions(sessionId)).toEqual(contributions);
        expect(await repo.listMetrics(sessionId, 10)).toEqual([metric]);
      });

      it('records a round without a metric and a round nobody contributed to', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        await repo.recordRound(roundOf(sessionId, 1), [contributionOf(sessionId, 1, nodeIds[0])], null);
        const empty = roundOf(sessionId, 2, { applied: false, updates: 0, samples: 0, trainLoss: 0, failures: 2 });
        await repo.recordRound(empty, [], metricOf(2, { samples: 0, nodes: 0 }));
        expect(await repo.listRounds(sessionId)).toEqual([roundOf(sessionId, 1), empty]);
        expect((await repo.listMetrics(sessionId, 10)).map((m) => m.round)).toEqual([2]);
      });

      it('lists rounds in round order and keeps sessions apart', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const other = await repo.createSession(sampleConfig, T0);
        for (const r of [3, 1, 2]) await repo.recordRound(roundOf(sessionId, r), [contributionOf(sessionId, r, nodeIds[0])], metricOf(r));
        await repo.recordRound(roundOf(other, 1), [contributionOf(other, 1, nodeIds[0])], metricOf(1));
        expect((await repo.listRounds(sessionId)).map((r) => r.round)).toEqual([1, 2, 3]);
        expect((await repo.listContributions(sessionId)).map((c) => c.round)).toEqual([1, 2, 3]);
        expect((await repo.listRounds(other)).map((r) => r.sessionId)).toEqual([other]);
        expect(await repo.listContributions(other)).toHaveLength(1);
        expect(await repo.listRounds(9999)).toEqual([]);
      });

      it('rejects recording the same round twice and leaves the first recording untouched', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(2);
        const first = nodeIds.map((nodeId) => contributionOf(sessionId, 1, nodeId));
        await repo.recordRound(roundOf(sessionId, 1), first, metricOf(1));

        const second = [contributionOf(sessionId, 1, nodeIds[0], { samples: 999 })];
        await expect(
          repo.recordRound(roundOf(sessionId, 1, { samples: 999 }), second, metricOf(1, { samples: 999 })),
        ).rejects.toMatchObject({ code: 'CONFLICT' });

        expect(await repo.listRounds(sessionId)).toEqual([roundOf(sessionId, 1)]);
        expect(await repo.listContributions(sessionId)).toEqual(first);
        expect(await repo.listMetrics(sessionId, 10)).toEqual([metricOf(1)]);
      });

      it('rejects two contributions of one node in one round and writes nothing of that round', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const twice = [contributionOf(sessionId, 1, nodeIds[0]), contributionOf(sessionId, 1, nodeIds[0], { attempt: 2 })];
        await expect(repo.recordRound(roundOf(sessionId, 1), twice, metricOf(1))).rejects.toMatchObject({ code: 'CONFLICT' });
        expect(await repo.listRounds(sessionId)).toEqual([]);
        expect(await repo.listContributions(sessionId)).toEqual([]);
        expect(await repo.listMetrics(sessionId, 10)).toEqual([]);
        // The round can still be recorded correctly afterwards.
        await repo.recordRound(roundOf(sessionId, 1), twice.slice(0, 1), metricOf(1));
        expect(await repo.listRounds(sessionId)).toHaveLength(1);
      });

      it('rejects a round that refers to an unknown session or node, writing nothing', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        await expect(repo.recordRound(roundOf(9999, 1), [], null)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(
          repo.recordRound(roundOf(sessionId, 1), [contributionOf(sessionId, 1, nodeIds[0]), contributionOf(sessionId, 1, 9999)], metricOf(1)),
        ).rejects.toMatchObject({ code: 'NOT_FOUND' });
        expect(await repo.listRounds(sessionId)).toEqual([]);
        expect(await repo.listContributions(sessionId)).toEqual([]);
        expect(await repo.listMetrics(sessionId, 10)).toEqual([]);
      });

      it('refuses contributions or a metric that belong to another round', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        await expect(repo.recordRound(roundOf(sessionId, 1), [contributionOf(sessionId, 2, nodeIds[0])], null)).rejects.toMatchObject({
          code: 'BAD_REQUEST',
        });
        await expect(repo.recordRound(roundOf(sessionId, 1), [], metricOf(2))).rejects.toMatchObject({ code: 'BAD_REQUEST' });
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
        ];
        for (const [round, contributions, metric] of cases) {
          await expect(repo.recordRound(round, contributions, metric)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        }
        expect(await repo.listRounds(sessionId)).toEqual([]);
      });

      it('returns the newest metrics up to the limit, oldest first', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        for (let r = 1; r <= 5; r++) {
          await repo.recordRound(roundOf(sessionId, r), [contributionOf(sessionId, r, nodeIds[0])], metricOf(r, { trainLoss: 1 / r }));
        }
        expect((await repo.listMetrics(sessionId, 3)).map((m) => m.round)).toEqual([3, 4, 5]);
        expect((await repo.listMetrics(sessionId, 100)).map((m) => m.round)).toEqual([1, 2, 3, 4, 5]);
        expect(await repo.listMetrics(sessionId, 0)).toEqual([]);
      });

      it('fills in the test figures of a recorded metric once evaluation is done, and only those', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        await repo.recordRound(roundOf(sessionId, 5), [contributionOf(sessionId, 5, nodeIds[0])], metricOf(5));
        await repo.recordEvaluation(sessionId, 5, 0.2875, 0.9431);
        expect(await repo.listMetrics(sessionId, 10)).toEqual([metricOf(5, { testLoss: 0.2875, testAccuracy: 0.9431 })]);
        // A later evaluation of the same round replaces the figures.
        await repo.recordEvaluation(sessionId, 5, 0.25, 0.95);
        expect(await repo.listMetrics(sessionId, 10)).toEqual([metricOf(5, { testLoss: 0.25, testAccuracy: 0.95 })]);
      });

      it('refuses an evaluation of a round without a metric, or with non-finite figures', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        await repo.recordRound(roundOf(sessionId, 1), [contributionOf(sessionId, 1, nodeIds[0])], null);
        await expect(repo.recordEvaluation(sessionId, 1, 0.3, 0.9)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(repo.recordEvaluation(sessionId, 2, 0.3, 0.9)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(repo.recordEvaluation(9999, 1, 0.3, 0.9)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await repo.recordRound(roundOf(sessionId, 2), [contributionOf(sessionId, 2, nodeIds[0])], metricOf(2));
        await expect(repo.recordEvaluation(sessionId, 2, Number.NaN, 0.9)).rejects.toMatchObject({ code: 'BAD_REQUEST' });
        expect(await repo.listMetrics(sessionId, 10)).toEqual([metricOf(2)]);
      });

      it('records a round of 100 contributions', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(100);
        const contributions = nodeIds.map((nodeId) => contributionOf(sessionId, 1, nodeId));
        await repo.recordRound(roundOf(sessionId, 1, { updates: 100, samples: 6400 }), contributions, metricOf(1));
        expect(await repo.listContributions(sessionId)).toEqual(contributions);
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

      it('lists applied and rejected updates together, by round then arrival', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(2);
        const late = contributionOf(sessionId, 1, nodeIds[1], { status: 'rejected', reason: 'STALE_ROUND', receivedAt: T0 + 5000 });
        const early = contributionOf(sessionId, 1, nodeIds[1], { status: 'rejected', reason: 'CHECKSUM', receivedAt: T0 + 1000 });
        await repo.recordRejection(late);
        await repo.recordRejection(early);
        const applied = contributionOf(sessionId, 1, nodeIds[0], { receivedAt: T0 + 1500 });
        await repo.recordRound(roundOf(sessionId, 1, { updates: 1 }), [applied], metricOf(1));
        const round2 = contributionOf(sessionId, 2, nodeIds[0], { status: 'rejected', reason: 'NOT_ASSIGNED', receivedAt: T0 });
        await repo.recordRejection(round2);
        expect(await repo.listContributions(sessionId)).toEqual([early, applied, late, round2]);
      });

      it('keeps rejected updates handed in with a round, alongside the applied one of the same node', async () => {
        const { sessionId, nodeIds } = await sessionWithNodes(1);
        const applied = contributionOf(sessionId, 1, nodeIds[0]);
        const rejected = contributionOf(sessionId, 1, nodeIds[0], { status: 'rejected', reason: 'DUPLICATE', receivedAt: applied.receivedAt + 1 });
        await repo.recordRound(roundOf(sessionId, 1, { updates: 1 }), [applied, rejected], null);
        expect(await repo.listContributions(sessionId)).toEqual([applied, rejected]);
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
        await repo.recordRound(roundOf(sessionId, 1), [contributionOf(sessionId, 1, nodeIds[0])], metricOf(1));
        const rejection = contributionOf(sessionId, 2, nodeIds[1], { status: 'rejected', reason: 'FUTURE_ROUND' });
        const [duplicate, recorded] = await Promise.allSettled([
          repo.recordRound(roundOf(sessionId, 1), [contributionOf(sessionId, 1, nodeIds[1])], metricOf(1)),
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

      it('refuses a checkpoint of an unknown session or with a malformed hash', async () => {
        await expect(repo.recordCheckpoint(checkpointOf(9999, 1))).rejects.toMatchObject({ code: 'NOT_FOUND' });
        const { sessionId } = await sessionWithNodes(0);
        await expect(repo.recordCheckpoint(checkpointOf(sessionId, 1, { sha256: 'xyz' }))).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      });
    });
  });
}
