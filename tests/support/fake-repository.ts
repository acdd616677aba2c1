// In-memory TrainingRepository for service and unit tests. It keeps the real adapter's rules (the same input
// checks, unique keys, references to existing sessions and nodes, all-or-nothing writes with their outbox
// events, outbox ids that are never reused, coded errors)
// so a service test against the fake fails where production would; tests/support/repository-conformance.ts
// runs the same behaviour tests against both.

import { HyperGpuError } from '../../src/protocol/errors';
import type { CommittedEvent, OutboxRecord } from '../../src/server/core/engine/committed';
import type { JoinTokenRecord, TrainingRepository } from '../../src/server/core/ports';
import type {
  CheckpointRecord,
  ContributionRecord,
  MetricPoint,
  NodeCapabilities,
  RoundSummary,
  SessionEvent,
  SessionSnapshot,
} from '../../src/server/core/types';
import {
  RESUMABLE_STATES,
  checkCheckpoint,
  checkContributionOfRound,
  checkEpochMs,
  checkEvaluation,
  checkEvent,
  checkMetric,
  checkNode,
  checkRejection,
  checkRound,
  checkSession,
  checkSessionConfig,
  checkSessionOfRound,
  compareContributions,
  storedCursor,
  checkJoinToken,
  checkTokenHash,
} from '../../src/server/adapters/db/record-rules';
import {
  checkExplicitSessionId,
  checkOutboxConsumer,
  checkOutboxPosition,
  checkOutboxRead,
  checkPruneUpTo,
  storedOutboxEvents,
} from '../../src/server/adapters/db/outbox-rules';

interface StoredNode {
  id: number;
  name: string;
  capabilities: NodeCapabilities;
  firstSeenAt: number;
  lastSeenAt: number;
  tokenHash?: string;
}

export interface FakeRepository extends TrainingRepository {
  /** Test helper: the stored node rows (the port itself has no node read). */
  nodes(): StoredNode[];
  /** Test helper: how many calls were made per method, e.g. to assert a service recorded a round once. */
  readonly calls: Record<string, number>;
}

// Stored copies are never handed out: callers get clones, as they would get fresh rows from a database.
const clone = <T>(value: T): T => structuredClone(value);

export function createFakeRepository(): FakeRepository {
  const sessions = new Map<number, SessionSnapshot>();
  const nodesByName = new Map<string, StoredNode>();
  const rounds = new Map<string, RoundSummary>();
  const applied = new Map<string, ContributionRecord>();
  const rejected: ContributionRecord[] = [];
  const joinTokens: (JoinTokenRecord & { tokenHash: string })[] = [];
  const metrics = new Map<string, MetricPoint & { sessionId: number }>();
  const checkpoints: CheckpointRecord[] = [];
  // Recording order, like the table's autoincrement id.
  const events: SessionEvent[] = [];
  // Id order, like the table; ids only grow, even once everything was pruned (SQLite's AUTOINCREMENT).
  let outbox: OutboxRecord[] = [];
  let nextOutboxId = 1;
  const cursors = new Map<string, number>();
  let nextSessionId = 1;
  let nextNodeId = 1;
  let closed = false;
  const calls: Record<string, number> = {};

  const roundKey = (sessionId: number, round: number) => `${sessionId}/${round}`;
  const contributionKey = (c: ContributionRecord) => `${c.sessionId}/${c.round}/${c.nodeId}`;
  const nodeIds = () => new Set([...nodesByName.values()].map((n) => n.id));

  // Async like the real adapter, so callers that forget an await behave the same way in tests.
  function op<T>(name: string, work: () => T): Promise<T> {
    calls[name] = (calls[name] ?? 0) + 1;
    try {
      if (closed) throw new Error('repository is closed');
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  function requireSession(sessionId: number, context: string): void {
    if (!sessions.has(sessionId)) {
      throw new HyperGpuError('NOT_FOUND', `${context}: refers to a session, round or node that does not exist`);
    }
  }

  function requireNode(nodeId: number, context: string): void {
    if (!nodeIds().has(nodeId)) {
      throw new HyperGpuError('NOT_FOUND', `${context}: refers to a session, round or node that does not exist`);
    }
  }

  /** The last step of a write, after every check passed: its events join the outbox with the next ids. */
  function appendOutbox(stored: CommittedEvent[]): OutboxRecord[] {
    const records = stored.map((event) => ({ id: nextOutboxId++, event }));
    outbox.push(...records.map(clone));
    return records;
  }

  return {
    calls,

    nodes() {
      return [...nodesByName.values()].sort((a, b) => a.id - b.id).map(clone);
    },

    createSession(config, startedAt, options = {}) {
      return op('createSession', () => {
        checkEpochMs('session startedAt', startedAt);
        checkSessionConfig('session config', config);
        if (options.id !== undefined) checkExplicitSessionId(options.id);
        const stored = storedOutboxEvents(options.outbox);
        if (options.id !== undefined && sessions.has(options.id)) {
          throw new HyperGpuError('CONFLICT', `session ${options.id}: already recorded (unique on id)`);
        }
        const id = options.id ?? nextSessionId;
        // An explicit id moves the sequence past it, as it does SQLite's AUTOINCREMENT.
        nextSessionId = Math.max(nextSessionId, id + 1);
        sessions.set(id, {
          id,
          state: 'idle',
          config: clone(config),
          round: 0,
          modelVersion: 0,
          epoch: 0,
          totalSamples: 0,
          startedAt,
          endedAt: null,
          lastTestAccuracy: null,
          lastTestLoss: null,
          lastRoundDurationMs: null,
          samplesPerSecond: 0,
          message: null,
        });
        appendOutbox(stored);
        return id;
      });
    },

    updateSession(session, events) {
      return op('updateSession', () => {
        checkSession(session);
        const stored = storedOutboxEvents(events);
        if (!sessions.has(session.id)) throw new HyperGpuError('NOT_FOUND', `session ${session.id}: not found`);
        sessions.set(session.id, clone(session));
        return appendOutbox(stored);
      });
    },

    lastSessionId() {
      return op('lastSessionId', () => Math.max(0, ...sessions.keys()));
    },

    getSession(id) {
      return op('getSession', () => {
        const session = sessions.get(id);
        return session ? clone(session) : null;
      });
    },

    listSessions(limit) {
      return op('listSessions', () =>
        [...sessions.values()]
          .sort((a, b) => b.id - a.id)
          .slice(0, Math.max(0, limit))
          .map(clone),
      );
    },

    findResumableSession() {
      return op('findResumableSession', () => {
        const found = [...sessions.values()]
          .filter((s) => RESUMABLE_STATES.includes(s.state))
          .sort((a, b) => b.id - a.id)[0];
        return found ? clone(found) : null;
      });
    },

    upsertNode(name, capabilities, seenAt) {
      return op('upsertNode', () => {
        checkNode(name, capabilities, seenAt);
        const existing = nodesByName.get(name);
        if (existing) {
          existing.capabilities = clone(capabilities);
          existing.lastSeenAt = seenAt;
          return existing.id;
        }
        const id = nextNodeId++;
        nodesByName.set(name, { id, name, capabilities: clone(capabilities), firstSeenAt: seenAt, lastSeenAt: seenAt });
        return id;
      });
    },

    nodeCredential(name) {
      return op('nodeCredential', () => {
        const node = nodesByName.get(name);
        return node ? { id: node.id, tokenHash: node.tokenHash ?? null } : null;
      });
    },

    setNodeTokenHash(id, tokenHash) {
      return op('setNodeTokenHash', () => {
        if (!/^[0-9a-f]{64}$/.test(tokenHash)) throw new HyperGpuError('BAD_REQUEST', `node ${id} token hash must be 64 lowercase hex digits`);
        const node = [...nodesByName.values()].find((n) => n.id === id);
        if (!node) throw new HyperGpuError('NOT_FOUND', `node ${id} does not exist`);
        if (node.tokenHash) return false;
        node.tokenHash = tokenHash;
        return true;
      });
    },

    pruneIdleNodes(seenBefore) {
      return op('pruneIdleNodes', () => {
        const credited = new Set([...applied.values(), ...rejected].map((c) => c.nodeId));
        let count = 0;
        for (const [name, node] of nodesByName) {
          if (node.lastSeenAt < seenBefore && !credited.has(node.id)) {
            nodesByName.delete(name);
            count++;
          }
        }
        return count;
      });
    },

    createJoinToken(token) {
      return op('createJoinToken', () => {
        checkJoinToken(token);
        if (joinTokens.some((t) => t.tokenHash === token.tokenHash)) throw new HyperGpuError('CONFLICT', 'join token: unique constraint on tokenHash');
        const stored = { id: joinTokens.length + 1, ...clone(token), revokedAt: null };
        joinTokens.push(stored);
        const { tokenHash: _hash, ...record } = stored;
        return clone(record);
      });
    },

    joinTokenByHash(tokenHash) {
      return op('joinTokenByHash', () => {
        checkTokenHash('join token', tokenHash);
        const found = joinTokens.find((t) => t.tokenHash === tokenHash);
        if (!found) return null;
        const { tokenHash: _hash, ...record } = found;
        return clone(record);
      });
    },

    listJoinTokens() {
      return op('listJoinTokens', () => joinTokens.map(({ tokenHash: _hash, ...record }) => clone(record)));
    },

    revokeJoinToken(id, revokedAt) {
      return op('revokeJoinToken', () => {
        checkEpochMs('join token revokedAt', revokedAt);
        const found = joinTokens.find((t) => t.id === id);
        if (!found) return null;
        found.revokedAt ??= revokedAt;
        const { tokenHash: _hash, ...record } = found;
        return clone(record);
      });
    },

    recordRound(round, contributions, metric, session, events) {
      return op('recordRound', () => {
        checkRound(round);
        for (const c of contributions) checkContributionOfRound(c, round);
        if (metric) checkMetric(metric, round);
        checkSessionOfRound(session, round);
        const stored = storedOutboxEvents(events);
        const context = `session ${round.sessionId} round ${round.round}`;

        // Every check happens before the first write: all or nothing, like the database transaction.
        requireSession(round.sessionId, context);
        for (const c of contributions) requireNode(c.nodeId, context);
        const key = roundKey(round.sessionId, round.round);
        if (rounds.has(key)) throw new HyperGpuError('CONFLICT', `${context}: already recorded (unique on sessionId, round)`);
        const appliedNow = contributions.filter((c) => c.status === 'applied');
        const keys = new Set<string>();
        for (const c of appliedNow) {
          const k = contributionKey(c);
          if (keys.has(k) || applied.has(k)) {
            throw new HyperGpuError('CONFLICT', `${context}: already recorded (unique on sessionId, round, nodeId)`);
          }
          keys.add(k);
        }
        if (metric && metrics.has(key)) throw new HyperGpuError('CONFLICT', `${context}: already recorded (unique on sessionId, round)`);

        // Stored as the database stores it: the cursor keeps exactly its own fields.
        rounds.set(key, { ...clone(round), cursor: storedCursor(round.cursor) });
        for (const c of appliedNow) applied.set(contributionKey(c), { ...clone(c), reason: null });
        for (const c of contributions) if (c.status === 'rejected') rejected.push(clone(c));
        if (metric) metrics.set(key, { ...clone(metric), sessionId: round.sessionId });
        sessions.set(session.id, clone(session));
        return appendOutbox(stored);
      });
    },

    lastRound(sessionId) {
      return op('lastRound', () => {
        let last: RoundSummary | null = null;
        for (const r of rounds.values()) if (r.sessionId === sessionId && (last === null || r.round > last.round)) last = r;
        return last ? clone(last) : null;
      });
    },

    recordEvent(event) {
      return op('recordEvent', () => {
        checkEvent(event);
        requireSession(event.sessionId, `session ${event.sessionId} event ${event.kind}`);
        // JSON round trip, as the detail column does (drops undefined members).
        events.push({ ...clone(event), detail: event.detail === null ? null : JSON.parse(JSON.stringify(event.detail)) });
      });
    },

    listEvents(sessionId, limit) {
      return op('listEvents', () => {
        const all = events.filter((e) => e.sessionId === sessionId);
        return (limit > 0 ? all.slice(-limit) : []).map(clone);
      });
    },

    recordRejection(contribution, events) {
      return op('recordRejection', () => {
        checkRejection(contribution);
        const stored = storedOutboxEvents(events);
        const context = `session ${contribution.sessionId} round ${contribution.round} node ${contribution.nodeId} rejection`;
        requireSession(contribution.sessionId, context);
        requireNode(contribution.nodeId, context);
        rejected.push(clone(contribution));
        return appendOutbox(stored);
      });
    },

    recordEvaluation(sessionId, round, testLoss, testAccuracy) {
      return op('recordEvaluation', () => {
        checkEvaluation(sessionId, round, testLoss, testAccuracy);
        const metric = metrics.get(roundKey(sessionId, round));
        if (!metric) throw new HyperGpuError('NOT_FOUND', `session ${sessionId} round ${round} metric: not found`);
        metric.testLoss = testLoss;
        metric.testAccuracy = testAccuracy;
      });
    },

    listContributions(sessionId, range) {
      const inRange = (round: number) => !range || (round > range.afterRound && round <= range.afterRound + range.rounds);
      return op('listContributions', () =>
        [...[...applied.values()].filter((c) => c.sessionId === sessionId), ...rejected.filter((c) => c.sessionId === sessionId)]
          .filter((c) => inRange(c.round))
          .sort(compareContributions)
          .map(clone),
      );
    },

    listRounds(sessionId, range) {
      return op('listRounds', () =>
        [...rounds.values()]
          .filter((r) => r.sessionId === sessionId && (!range || (r.round > range.afterRound && r.round <= range.afterRound + range.rounds)))
          .sort((a, b) => a.round - b.round)
          .map(clone),
      );
    },

    listMetrics(sessionId, limit) {
      return op('listMetrics', () => {
        const all = [...metrics.values()].filter((m) => m.sessionId === sessionId).sort((a, b) => a.round - b.round);
        const newest = limit > 0 ? all.slice(-limit) : [];
        return newest.map(({ sessionId: _omit, ...point }) => clone(point));
      });
    },

    readOutbox(afterId, limit) {
      return op('readOutbox', () => {
        checkOutboxRead(afterId, limit);
        return outbox
          .filter((record) => record.id > afterId)
          .slice(0, limit)
          .map(clone);
      });
    },

    outboxCursor(consumer) {
      return op('outboxCursor', () => {
        checkOutboxConsumer(consumer);
        return cursors.get(consumer) ?? 0;
      });
    },

    saveOutboxCursor(consumer, position) {
      return op('saveOutboxCursor', () => {
        checkOutboxPosition(consumer, position);
        cursors.set(consumer, position);
      });
    },

    pruneOutbox(upToId) {
      return op('pruneOutbox', () => {
        checkPruneUpTo(upToId);
        const before = outbox.length;
        outbox = outbox.filter((record) => record.id > upToId);
        return before - outbox.length;
      });
    },

    recordCheckpoint(checkpoint) {
      return op('recordCheckpoint', () => {
        checkCheckpoint(checkpoint);
        requireSession(checkpoint.sessionId, `session ${checkpoint.sessionId} round ${checkpoint.round} checkpoint`);
        const same = checkpoints.some(
          (c) => c.sessionId === checkpoint.sessionId && c.round === checkpoint.round && c.sha256 === checkpoint.sha256,
        );
        if (!same) checkpoints.push(clone(checkpoint));
      });
    },

    latestCheckpoint(sessionId) {
      return op('latestCheckpoint', () => {
        // Highest round; among equal rounds the last recorded (checkpoints is in insertion order).
        let latest: CheckpointRecord | null = null;
        for (const c of checkpoints) if (c.sessionId === sessionId && (latest === null || c.round >= latest.round)) latest = c;
        return latest ? clone(latest) : null;
      });
    },

    listCheckpoints(sessionId) {
      return op('listCheckpoints', () =>
        checkpoints
          .filter((c) => c.sessionId === sessionId)
          .sort((a, b) => a.round - b.round)
          .map(clone),
      );
    },

    deleteCheckpointsBefore(sessionId, beforeRound) {
      return op('deleteCheckpointsBefore', () => {
        const doomed = (c: CheckpointRecord) => c.sessionId === sessionId && c.round < beforeRound;
        const deleted = checkpoints.filter(doomed).sort((a, b) => a.round - b.round);
        const kept = checkpoints.filter((c) => !doomed(c));
        checkpoints.length = 0;
        checkpoints.push(...kept);
        return deleted.map(clone);
      });
    },

    close() {
      calls.close = (calls.close ?? 0) + 1;
      closed = true;
      return Promise.resolve();
    },
  };
}
