// The coordinator: admits nodes, runs rounds, applies updates, evaluates, checkpoints, publishes events.
// Decisions live in core (round.ts, shards.ts, optimizer.ts); this file sequences them and runs their
// effects through ports. It never touches sockets, files or the database directly.
import type { AgentChannelHandler, AgentLink, SessionDescriptor } from '../core/agent-protocol';
import { CLOSE_CODES } from '../core/agent-protocol';
import { AdmissionError, HyperGpuError, RequestError } from '../../protocol/errors';
import { ArrivalStats, DEFAULT_DEADLINE_POLICY, hardDeadlineMs, stragglerCutoffMs, type DeadlinePolicy } from '../core/deadline';
import type { CoordinatorEvent, DashboardSnapshot, LogLine, StatusSnapshot } from '../core/events';
import { decodeFrameInto, decodeHeader, encodeFrame, FrameKind } from '../../protocol/frame';
import { applyOptimizerStep, createOptimizerState, type OptimizerState } from '../core/optimizer';
import type { Aggregator, CheckpointStore, Clock, Credentials, Evaluator, TrainingRepository, UpdateJournal, UpdateSlot } from '../core/ports';
import { acceptUpdate, admitUpdate, closeRound, dropNode, isRoundComplete, openRound, type OpenRound } from '../core/round';
import { resolveSessionConfig } from '../core/session-config';
import { freshCursor, type DataCursor } from '../core/shards';
import type {
  CheckpointRecord,
  ContributionRecord,
  MetricPoint,
  ModelName,
  NodeCapabilities,
  NodeSnapshot,
  RoundSummary,
  SessionConfig,
  SessionEvent,
  SessionEventKind,
  SessionSnapshot,
} from '../core/types';
import { verifyLedger, type LedgerReport } from './ledger';
import type { EventBus } from '../adapters/event-bus';
import type { SessionConfigInput, TrainingControl } from './training-control';


export interface ModelCatalog {
  paramCount(model: ModelName): number;
  initialParams(model: ModelName, seed: number): Float32Array;
}

export interface DatasetCatalog {
  describe(id: string): Promise<{ trainSize: number; testSize: number }>;
}

export interface CoordinatorOptions {
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  /** Metric points kept in memory for the live view (the database keeps all of them). */
  historyLimit: number;
  /** Round deadline policy; the ceiling comes from each session's roundTimeoutMs. */
  deadline?: Partial<Omit<DeadlinePolicy, 'ceilingMs'>>;
}

export interface CoordinatorDeps {
  repo: TrainingRepository;
  checkpoints: CheckpointStore;
  journal: UpdateJournal;
  aggregator: Aggregator;
  createEvaluator(model: ModelName, dataset: string): Promise<Evaluator>;
  models: ModelCatalog;
  datasets: DatasetCatalog;
  clock: Clock;
  credentials: Credentials;
  events: EventBus;
  options: CoordinatorOptions;
  log?: (line: LogLine) => void;
}

interface NodeEntry {
  snapshot: NodeSnapshot;
  link: AgentLink | null;
  /** Session the agent has loaded its model and data for; it gets work only for that session. */
  readySession: number | null;
  assignedAt: number | null;
  /** Rounds in a row this node was assigned, stayed connected, and did not deliver in time. */
  missedStreak: number;
  /** Not assigned work before this round (a chronically slow node must not slow every round). */
  benchedUntilRound: number;
  /** How many times in a row it was benched: each time the bench lasts twice as long. */
  benchLevel: number;
}

interface ActiveSession {
  snapshot: SessionSnapshot;
  config: SessionConfig;
  trainSize: number;
  paramCount: number;
  params: Float32Array;
  optimizer: OptimizerState;
  cursor: DataCursor;
  evaluator: Evaluator | null;
  lastCheckpointRound: number;
  arrivals: ArrivalStats;
}

const LOG_LIMIT = 200;
const TIMELINE_LIMIT = 500;

export class Coordinator implements TrainingControl, AgentChannelHandler {
  readonly events: EventBus;
  private readonly registry = new Map<number, NodeEntry>();
  private active: ActiveSession | null = null;
  private open: OpenRound<UpdateSlot> | null = null;
  private closing: Promise<void> | null = null;
  private cancelDeadline: (() => void) | null = null;
  private cancelStraggler: (() => void) | null = null;
  private timeline: SessionEvent[] = [];
  private cancelSweep: (() => void) | null = null;
  private history: MetricPoint[] = [];
  private readonly logs: LogLine[] = [];
  /** Background work in flight (writes, evaluations); each removes itself when done. */
  private readonly background = new Set<Promise<unknown>>();
  private readonly startedAt: number;
  private shuttingDown = false;
  private sessionWaiters: { resolve: (s: SessionSnapshot) => void; predicate: (s: SessionSnapshot) => boolean }[] = [];

  constructor(private readonly deps: CoordinatorDeps) {
    this.events = deps.events;
    this.startedAt = deps.clock.now();
    this.scheduleSweep();
  }

  // ---------------------------------------------------------------- agents

  /**
   * A name belongs to the agent that registered it first: it was issued a secret then, and must present it
   * to come back under that name (and that node's ledger). Anyone else gets NAME_TAKEN.
   */
  async registerNode(name: string, capabilities: NodeCapabilities, link: AgentLink, token?: string): Promise<number> {
    const now = this.deps.clock.now();
    const credential = await this.deps.repo.nodeCredential(name);
    if (credential?.tokenHash && (!token || this.deps.credentials.hash(token) !== credential.tokenHash)) {
      throw new AdmissionError(
        'NAME_TAKEN',
        `node name ${name} belongs to another agent (${token ? 'wrong token' : 'no token presented'}): pick another --name, or run with the --state-dir that holds this name's token`,
      );
    }
    const id = await this.deps.repo.upsertNode(name, capabilities, now);
    let issued: string | undefined;
    if (!credential?.tokenHash) {
      issued = this.deps.credentials.issue();
      await this.deps.repo.setNodeTokenHash(id, this.deps.credentials.hash(issued));
    }
    const existing = this.registry.get(id);
    if (existing?.link && existing.link !== link) {
      // The same agent name reconnected (or someone reused it): the newest connection wins.
      existing.link.close(CLOSE_CODES.replaced, `node ${name} connected again from another socket`);
      this.dropFromRound(id, 'replaced by a newer connection');
    }
    const previous = existing?.snapshot;
    const snapshot: NodeSnapshot = {
      id,
      name,
      status: 'idle',
      statusReason: previous ? 'reconnected' : 'joined',
      capabilities,
      joinedAt: now,
      lastHeartbeatAt: now,
      // Credit belongs to the session's ledger, not to the connection: a node (re)joining after a
      // coordinator restart sees everything it was credited before.
      ...this.creditOf(id),
      samplesPerSecond: previous?.samplesPerSecond || capabilities.samplesPerSecond,
      currentRound: null,
      statusChangedAt: now,
    };
    this.registry.set(id, { snapshot, link, readySession: null, assignedAt: null, missedStreak: 0, benchedUntilRound: existing?.benchedUntilRound ?? 0, benchLevel: existing?.benchLevel ?? 0 });
    link.sendJson({ v: 1, type: 'welcome', nodeId: id, heartbeatMs: this.deps.options.heartbeatMs, session: this.sessionDescriptor(), ...(issued ? { token: issued } : {}) });
    this.log('info', `node ${name} (#${id}) ${previous ? 'reconnected' : 'joined'}: ${capabilities.backend} on ${capabilities.device}, ${Math.round(capabilities.samplesPerSecond)} samples/s measured`);
    this.recordTimeline(previous ? 'node-rejoined' : 'node-joined', `${name} ${previous ? 'rejoined' : 'joined'} (${capabilities.backend})`, id);
    this.publishNode(id);
    return id;
  }

  markReady(nodeId: number, sessionId: number): void {
    const entry = this.registry.get(nodeId);
    if (!entry || !this.active || sessionId !== this.active.snapshot.id) return;
    entry.readySession = sessionId;
    this.maybeOpenRound();
  }

  heartbeat(nodeId: number): void {
    const entry = this.registry.get(nodeId);
    if (!entry) return;
    entry.snapshot.lastHeartbeatAt = this.deps.clock.now();
  }

  /** The connection closed or the agent said goodbye. */
  disconnect(nodeId: number, link: AgentLink, reason: string, left = false): void {
    const entry = this.registry.get(nodeId);
    if (!entry || entry.link !== link) return; // an older, replaced connection
    entry.link = null;
    entry.readySession = null;
    const silentForMs = this.deps.clock.now() - entry.snapshot.lastHeartbeatAt;
    this.setNodeStatus(nodeId, left ? 'left' : 'failed', reason);
    this.log(left ? 'info' : 'warn', `node ${entry.snapshot.name} (#${nodeId}) ${left ? 'left' : 'failed'}: ${reason}`);
    this.recordTimeline(left ? 'node-left' : 'node-failed', `${entry.snapshot.name} ${left ? 'left' : 'failed'}: ${reason}`, nodeId, { silentForMs });
    this.dropFromRound(nodeId, reason);
  }

  /**
   * One binary frame from a registered agent. Validation happens here, synchronously, before anything is
   * kept: the header is checked, the update is admitted against the open round, and only then is the payload
   * copied into an aggregator slot and verified. Anything wrong is answered with a reason and recorded.
   */
  receiveFrame(nodeId: number, bytes: Uint8Array): void {
    const entry = this.registry.get(nodeId);
    if (!entry?.link) return;
    const now = this.deps.clock.now();
    let header;
    try {
      header = decodeHeader(bytes);
    } catch (error) {
      this.rejectUpdate(nodeId, null, error);
      return;
    }
    if (header.kind === FrameKind.Model) {
      this.rejectUpdate(nodeId, header, new RequestError('BAD_REQUEST', 'agents may not send model frames'));
      return;
    }
    // While a round is being applied its set of updates is fixed: anything arriving now is too late for it.
    const open = this.closing ? null : this.open;
    let slot: UpdateSlot | null = null;
    try {
      admitUpdate(open, this.active?.snapshot.id ?? null, nodeId, header);
      if (header.paramCount !== this.active!.paramCount) {
        throw new HyperGpuError('PARAM_COUNT', `update has ${header.paramCount} parameters, model ${this.active!.config.model} has ${this.active!.paramCount}`);
      }
      slot = this.deps.aggregator.acquire(header.paramCount);
      const aggregator = this.deps.aggregator;
      const acquired = slot;
      const { stats } = decodeFrameInto(bytes, slot.view, () => aggregator.inspect(acquired), header);
      const norm = Math.sqrt(stats.sumSquares);
      if (norm > this.active!.config.maxUpdateNorm) {
        throw new AdmissionError('ABSURD_NORM', `update norm ${norm.toExponential(3)} exceeds the limit ${this.active!.config.maxUpdateNorm.toExponential(3)}`);
      }
    } catch (error) {
      if (slot) this.deps.aggregator.release(slot);
      this.rejectUpdate(nodeId, header, error);
      return;
    }
    acceptUpdate(open!, {
      nodeId,
      attempt: header.attempt,
      samples: header.sampleCount,
      trainLoss: header.trainLoss,
      checksum: header.checksum,
      receivedAt: now,
      slot,
    });
    if (entry.assignedAt !== null) {
      const seconds = Math.max(1e-3, (now - entry.assignedAt) / 1000);
      const rate = header.sampleCount / seconds;
      entry.snapshot.samplesPerSecond = entry.snapshot.samplesPerSecond > 0 ? 0.7 * entry.snapshot.samplesPerSecond + 0.3 * rate : rate;
    }
    entry.assignedAt = null;
    entry.missedStreak = 0;
    entry.benchLevel = Math.max(0, entry.benchLevel - 1);
    this.active!.arrivals.record(now - open!.openedAt);
    this.setNodeStatus(nodeId, 'idle', `delivered round ${header.round}`);
    entry.link.sendJson({ v: 1, type: 'accepted', round: header.round, samples: header.sampleCount });
    this.checkRoundProgress();
  }

  /** Closes the round when everyone assigned has answered, or arms the straggler cut-off once a quorum has. */
  private checkRoundProgress(): void {
    const open = this.open;
    if (!open || this.closing) return;
    if (isRoundComplete(open)) {
      void this.finishRound('all assigned nodes reported');
      return;
    }
    if (this.cancelStraggler) return;
    const delivered = open.accepted.size;
    const assigned = open.assignments.size - open.failed.size;
    const grace = stragglerCutoffMs(assigned, delivered, this.deps.clock.now() - open.openedAt, this.deadlinePolicy());
    if (grace !== null) {
      const round = open.round;
      this.cancelStraggler = this.deps.clock.setTimeout(() => {
        this.cancelStraggler = null;
        if (this.open?.round === round) void this.finishRound(`straggler cut-off after ${grace} ms grace`);
      }, grace);
    }
  }

  private deadlinePolicy(): DeadlinePolicy {
    return { ...DEFAULT_DEADLINE_POLICY, ...this.deps.options.deadline, ceilingMs: this.active?.config.roundTimeoutMs ?? 30_000 };
  }

  /** Protocol-level trouble on a connection that is not about one update (bad JSON, unknown message). */
  reportProtocolError(nodeId: number | null, message: string): void {
    this.log('warn', `${nodeId === null ? 'unregistered connection' : `node #${nodeId}`}: ${message}`);
  }

  private rejectUpdate(nodeId: number, header: { round: number; attempt: number; sampleCount: number; checksum: number; trainLoss: number; sessionId: number } | null, error: unknown): void {
    const entry = this.registry.get(nodeId);
    const code = error instanceof HyperGpuError ? error.code : 'BAD_MESSAGE';
    const reason = error instanceof Error ? error.message : String(error);
    const round = header?.round ?? 0;
    if (entry) {
      if (this.active) this.addCredit(nodeId, 'rejected', 0);
      entry.link?.sendJson({ v: 1, type: 'rejected', round, code, reason });
      this.publishNode(nodeId);
    }
    this.log('warn', `rejected update from node #${nodeId} for round ${round}: ${code}: ${reason}`);
    const sessionId = this.active?.snapshot.id;
    if (sessionId === undefined) return;
    const record: ContributionRecord = {
      sessionId,
      round,
      nodeId,
      attempt: header?.attempt ?? 0,
      samples: header?.sampleCount ?? 0,
      checksum: header?.checksum ?? 0,
      trainLoss: Number.isFinite(header?.trainLoss) ? header!.trainLoss : 0,
      epoch: 0,
      shardStart: 0,
      shardCount: 0,
      status: 'rejected',
      reason: `${code}: ${reason}`,
      receivedAt: this.deps.clock.now(),
    };
    this.track(this.deps.repo.recordRejection(record), 'record a rejected update');
  }

  // ---------------------------------------------------------------- session control

  async start(input: SessionConfigInput): Promise<SessionSnapshot> {
    if (this.active && (this.active.snapshot.state === 'running' || this.active.snapshot.state === 'paused')) {
      throw new RequestError('CONFLICT', `session ${this.active.snapshot.id} is ${this.active.snapshot.state}; stop it before starting another`);
    }
    const config = resolveSessionConfig(input);
    const { trainSize } = await this.describeDataset(config.dataset);
    const paramCount = this.deps.models.paramCount(config.model);
    const now = this.deps.clock.now();
    const id = await this.deps.repo.createSession(config, now);
    const snapshot: SessionSnapshot = {
      id,
      state: 'running',
      config,
      round: 0,
      modelVersion: 0,
      epoch: 0,
      totalSamples: 0,
      startedAt: now,
      endedAt: null,
      lastTestAccuracy: null,
      lastTestLoss: null,
      lastRoundDurationMs: null,
      samplesPerSecond: 0,
      message: null,
    };
    await this.deps.repo.updateSession(snapshot);
    this.active = {
      snapshot,
      config,
      trainSize,
      paramCount,
      params: this.deps.models.initialParams(config.model, config.seed),
      optimizer: createOptimizerState(config.optimizer, paramCount),
      cursor: freshCursor(),
      evaluator: null,
      lastCheckpointRound: 0,
      arrivals: new ArrivalStats(),
    };
    this.history = [];
    this.timeline = [];
    this.resetNodeCounters();
    const description =
      `${config.model} on ${config.dataset}, ${config.optimizer.name} lr ${config.optimizer.learningRate}, batch ${config.batchSize}/node` +
      (config.targetAccuracy ? `, target accuracy ${config.targetAccuracy}` : '') +
      (config.maxRounds ? `, at most ${config.maxRounds} rounds` : '') +
      (config.maxSamples ? `, budget ${config.maxSamples} samples` : '');
    this.log('info', `session ${id} started: ${description}`);
    this.recordTimeline('session-started', `session started: ${description}`);
    await this.startEvaluator();
    this.broadcastSession();
    this.publishStatus();
    this.maybeOpenRound();
    return snapshot;
  }

  /**
   * Picks up a session that was running or paused when the coordinator last stopped, however it stopped.
   * The model is rebuilt exactly: the latest checkpoint, then every journaled update the ledger records as
   * applied after it, in order. The data cursor comes from the last recorded round.
   */
  async resumeInterrupted(): Promise<SessionSnapshot | null> {
    const saved = await this.deps.repo.findResumableSession();
    if (!saved) return null;
    const config = saved.config;
    const { trainSize } = await this.describeDataset(config.dataset);
    const paramCount = this.deps.models.paramCount(config.model);
    const checkpoint = await this.deps.repo.latestCheckpoint(saved.id);
    let params = this.deps.models.initialParams(config.model, config.seed);
    let optimizer = createOptimizerState(config.optimizer, paramCount);
    let version = 0;
    if (checkpoint) {
      const payload = await this.deps.checkpoints.read(checkpoint.path, checkpoint.sha256);
      params = payload.params;
      optimizer = { slots: payload.optimizerState, step: payload.optimizerStep };
      version = payload.modelVersion;
    }
    const fromVersion = version;
    // Entries past the ledger's model version were journaled by a round whose transaction never committed.
    const entries = (await this.deps.journal.read(saved.id, version)).filter((e) => e.modelVersion <= saved.modelVersion);
    for (const entry of entries) {
      if (entry.modelVersion !== version + 1) break;
      applyOptimizerStep(config.optimizer, optimizer, params, entry.update);
      version = entry.modelVersion;
    }
    if (version !== saved.modelVersion) {
      const message = `cannot rebuild model version ${saved.modelVersion} exactly: checkpoint at version ${fromVersion} and the journal reaches only version ${version}`;
      await this.deps.repo.updateSession({ ...saved, state: 'failed', message, endedAt: this.deps.clock.now() });
      this.log('error', `session ${saved.id}: ${message}`);
      return null;
    }
    const lastRound = await this.deps.repo.lastRound(saved.id);
    const how = `${checkpoint ? `checkpoint at round ${checkpoint.round}` : 'the initial model'} + ${entries.length} journaled update(s)`;
    const snapshot: SessionSnapshot = {
      ...saved,
      message: `resumed after a coordinator restart from ${how}`,
    };
    this.active = {
      snapshot,
      config,
      trainSize,
      paramCount,
      params,
      optimizer,
      cursor: lastRound ? structuredClone(lastRound.cursor) : freshCursor(),
      evaluator: null,
      lastCheckpointRound: checkpoint?.round ?? 0,
      arrivals: new ArrivalStats(),
    };
    this.history = (await this.deps.repo.listMetrics(saved.id, this.deps.options.historyLimit)).sort((a, b) => a.round - b.round);
    this.timeline = await this.deps.repo.listEvents(saved.id, TIMELINE_LIMIT);
    await this.restoreNodeCounters(saved.id);
    this.log('info', `session ${saved.id} ${snapshot.message}: model version ${version}, round ${snapshot.round}`);
    this.recordTimeline('coordinator-restarted', `coordinator restarted; resumed from ${how}`, null, {
      checkpointRound: checkpoint?.round ?? 0,
      replayed: entries.length,
      modelVersion: version,
    });
    await this.deps.repo.updateSession(snapshot);
    await this.startEvaluator();
    this.broadcastSession();
    this.publishStatus();
    this.maybeOpenRound();
    return snapshot;
  }

  async pause(): Promise<SessionSnapshot> {
    const active = this.requireActive(['running'], 'pause');
    active.snapshot.state = 'paused';
    active.snapshot.message = `paused at round ${active.snapshot.round}`;
    // The open round still finishes and is applied; no new round opens until resume.
    await this.deps.repo.updateSession(active.snapshot);
    this.log('info', `session ${active.snapshot.id} paused at round ${active.snapshot.round}`);
    this.recordTimeline('session-paused', `paused at round ${active.snapshot.round}`);
    this.publishStatus();
    return active.snapshot;
  }

  async resume(): Promise<SessionSnapshot> {
    const active = this.requireActive(['paused'], 'resume');
    active.snapshot.state = 'running';
    active.snapshot.message = null;
    await this.deps.repo.updateSession(active.snapshot);
    this.log('info', `session ${active.snapshot.id} resumed at round ${active.snapshot.round}`);
    this.recordTimeline('session-resumed', `resumed at round ${active.snapshot.round}`);
    this.publishStatus();
    this.maybeOpenRound();
    return active.snapshot;
  }

  async stop(): Promise<SessionSnapshot> {
    const active = this.requireActive(['running', 'paused'], 'stop');
    await this.endSession('stopped', `stopped by the operator at round ${active.snapshot.round}`);
    return active.snapshot;
  }

  /** Resolves when the current session reaches a state the predicate accepts (used by headless mode). */
  waitForSession(predicate: (s: SessionSnapshot) => boolean): Promise<SessionSnapshot> {
    if (this.active && predicate(this.active.snapshot)) return Promise.resolve(this.active.snapshot);
    return new Promise((resolve) => this.sessionWaiters.push({ resolve, predicate }));
  }

  /** Graceful shutdown: finish or cancel the round in flight, write a final checkpoint, leave the session resumable. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    this.cancelSweep?.();
    if (this.closing) await this.closing;
    this.cancelOpenRound('coordinator shutting down');
    const active = this.active;
    if (active && (active.snapshot.state === 'running' || active.snapshot.state === 'paused')) {
      active.snapshot.message = `coordinator shut down at round ${active.snapshot.round}; it resumes on the next start`;
      await this.writeCheckpoint(active);
      await this.deps.repo.updateSession(active.snapshot);
    }
    while (this.background.size > 0) await Promise.all([...this.background]);
    await active?.evaluator?.close();
    for (const entry of this.registry.values()) entry.link?.close(CLOSE_CODES.shuttingDown, 'coordinator shutting down');
  }

  // ---------------------------------------------------------------- rounds

  private maybeOpenRound(): void {
    const active = this.active;
    if (!active || this.open || this.closing || this.shuttingDown) return;
    if (active.snapshot.state !== 'running') return;
    if (active.config.maxRounds !== null && active.snapshot.round >= active.config.maxRounds) return;
    if (active.config.maxSamples !== null && active.snapshot.totalSamples >= active.config.maxSamples) return;
    if (this.completionPending) return;
    const roundNumber = active.snapshot.round + 1;
    const ready = [...this.registry.values()].filter(
      (n) => n.link && n.readySession === active.snapshot.id && n.snapshot.status !== 'failed' && n.snapshot.status !== 'left',
    );
    const rested = ready.filter((n) => n.benchedUntilRound <= roundNumber);
    // Benching never stops training: if every ready node is benched, they all work.
    const nodeIds = (rested.length > 0 ? rested : ready).map((n) => n.snapshot.id).sort((a, b) => a - b);
    if (nodeIds.length === 0) return;
    const now = this.deps.clock.now();
    const { round, cursor } = openRound<UpdateSlot>({
      sessionId: active.snapshot.id,
      round: roundNumber,
      modelVersion: active.snapshot.modelVersion,
      now,
      nodeIds,
      cursor: active.cursor,
      batchSize: active.config.batchSize,
      trainSize: active.trainSize,
      timeoutMs: hardDeadlineMs(active.arrivals, this.deadlinePolicy()),
    });
    active.cursor = cursor;
    this.open = round;
    // One encoding of the model for everyone in the round: the same bytes go to each socket.
    const modelFrame = encodeFrame(
      { kind: FrameKind.Model, sessionId: active.snapshot.id, round: roundNumber, nodeId: 0, attempt: 0, modelVersion: active.snapshot.modelVersion, sampleCount: 0, trainLoss: Number.NaN },
      active.params,
    );
    for (const [nodeId, assignment] of round.assignments) {
      const entry = this.registry.get(nodeId)!;
      entry.assignedAt = now;
      entry.snapshot.currentRound = roundNumber;
      entry.link!.sendBinary(modelFrame);
      entry.link!.sendJson({ v: 1, type: 'assignment', assignment });
      this.setNodeStatus(nodeId, 'training', `round ${roundNumber}`);
    }
    this.cancelDeadline = this.deps.clock.setTimeout(() => void this.finishRound('deadline reached'), round.deadlineAt - now);
  }

  /**
   * Three missed cut-offs in a row bench a node for 4 rounds; on probation afterwards, one more miss benches it
   * for twice as long (up to 64 rounds). Each delivery on time takes it one step back.
   */
  private noteMissedRound(entry: NodeEntry, round: number): void {
    entry.missedStreak += 1;
    if (entry.missedStreak < (entry.benchLevel > 0 ? 1 : 3)) return;
    entry.missedStreak = 0;
    entry.benchLevel += 1;
    const rounds = Math.min(64, 4 * 2 ** (entry.benchLevel - 1));
    entry.benchedUntilRound = round + 1 + rounds;
    const why = `missed ${entry.benchLevel > 1 ? 'its probation round' : '3 rounds in a row'}; benched for ${rounds} rounds (until round ${entry.benchedUntilRound}), then tried again`;
    this.setNodeStatus(entry.snapshot.id, 'idle', why);
    this.log('warn', `node ${entry.snapshot.name} (#${entry.snapshot.id}) ${why}`);
    this.recordTimeline('node-benched', `${entry.snapshot.name} ${why}`, entry.snapshot.id, { rounds });
  }

  private dropFromRound(nodeId: number, reason: string): void {
    const entry = this.registry.get(nodeId);
    if (entry) entry.assignedAt = null;
    if (this.open && dropNode(this.open, nodeId, reason)) this.checkRoundProgress();
  }

  private finishRound(why: string): Promise<void> {
    if (this.closing || !this.open || !this.active) return this.closing ?? Promise.resolve();
    const open = this.open;
    const active = this.active;
    this.clearRoundTimers();
    this.closing = this.applyRound(active, open, why)
      .catch((error) => {
        this.log('error', `round ${open.round} of session ${open.sessionId} failed to close: ${errorText(error)}`);
        active.snapshot.state = 'failed';
        active.snapshot.message = `round ${open.round} failed to close: ${errorText(error)}`;
        this.recordTimeline('session-failed', active.snapshot.message);
        this.track(this.deps.repo.updateSession(active.snapshot), 'record the failed session');
        this.publishStatus();
      })
      .finally(() => {
        this.open = null;
        this.closing = null;
        // An evaluation that crossed the target while this round was closing waits for this moment.
        if (this.completionPending) this.track(this.confirmCompletion(active), 'confirm the session target');
        else this.maybeOpenRound();
      });
    return this.closing;
  }

  private clearRoundTimers(): void {
    this.cancelDeadline?.();
    this.cancelDeadline = null;
    this.cancelStraggler?.();
    this.cancelStraggler = null;
  }

  /**
   * Closes a round. The order is what makes application exactly-once across crashes:
   * aggregate -> journal the update durably -> record round, contributions, metric and session in one
   * transaction -> apply to the in-memory model. A crash before the transaction leaves a journal entry the
   * ledger does not know (ignored at recovery); after it, recovery replays the entry.
   */
  private async applyRound(active: ActiveSession, open: OpenRound<UpdateSlot>, why: string): Promise<void> {
    const now = this.deps.clock.now();
    const outcome = closeRound(open, active.cursor, active.config, now);
    for (const { nodeId, reason } of outcome.missing) {
      const entry = this.registry.get(nodeId);
      if (entry?.link) {
        entry.link.sendJson({ v: 1, type: 'cancel', round: open.round, reason });
        entry.assignedAt = null;
        if (entry.snapshot.status === 'training') this.setNodeStatus(nodeId, 'idle', `missed round ${open.round}: ${reason}`);
        this.noteMissedRound(entry, open.round);
      }
    }
    const snapshot = active.snapshot;
    const next: SessionSnapshot = { ...snapshot };
    let update: Float32Array | null = null;
    try {
      if (outcome.apply) {
        update = await this.deps.aggregator.weightedMean(
          outcome.accepted.map((u) => u.slot),
          outcome.accepted.map((u) => u.samples),
        );
        next.modelVersion += 1;
        await this.deps.journal.append({ sessionId: snapshot.id, round: open.round, modelVersion: next.modelVersion, samples: outcome.samples, update });
      }
    } finally {
      for (const accepted of open.accepted.values()) this.deps.aggregator.release(accepted.slot);
    }
    const closedAt = this.deps.clock.now();
    next.round = open.round;
    next.epoch = outcome.cursor.epoch;
    next.totalSamples += outcome.samples;
    next.lastRoundDurationMs = closedAt - open.openedAt;
    const metric: MetricPoint = {
      round: open.round,
      at: closedAt,
      trainLoss: Number.isFinite(outcome.trainLoss) ? outcome.trainLoss : 0,
      testLoss: null,
      testAccuracy: null,
      samples: outcome.samples,
      totalSamples: next.totalSamples,
      samplesPerSecond: 0,
      roundDurationMs: closedAt - open.openedAt,
      nodes: outcome.apply ? outcome.accepted.length : 0,
    };
    metric.samplesPerSecond = this.recentThroughput(metric);
    next.samplesPerSecond = metric.samplesPerSecond;
    const summary: RoundSummary = {
      sessionId: snapshot.id,
      round: open.round,
      modelVersion: next.modelVersion,
      openedAt: open.openedAt,
      closedAt,
      applied: outcome.apply,
      updates: outcome.accepted.length,
      samples: outcome.samples,
      trainLoss: metric.trainLoss,
      failures: outcome.missing.length,
      totalSamples: next.totalSamples,
      cursor: structuredClone(outcome.cursor),
    };
    const contributions: ContributionRecord[] = outcome.accepted.map((u) => {
      const assignment = open.assignments.get(u.nodeId)!;
      return {
        sessionId: snapshot.id,
        round: open.round,
        nodeId: u.nodeId,
        attempt: u.attempt,
        samples: u.samples,
        epoch: outcome.apply ? assignment.epoch : 0,
        shardStart: outcome.apply ? assignment.shardStart : 0,
        shardCount: outcome.apply ? assignment.shardCount : 0,
        checksum: u.checksum,
        trainLoss: u.trainLoss,
        status: outcome.apply ? ('applied' as const) : ('rejected' as const),
        reason: outcome.apply ? null : `QUORUM_NOT_MET: round ${open.round} was not applied: ${outcome.reason}`,
        receivedAt: u.receivedAt,
      };
    });
    await this.deps.repo.recordRound(summary, contributions, metric, next);
    // Durable: now the in-memory state may advance.
    if (update) applyOptimizerStep(active.config.optimizer, active.optimizer, active.params, update);
    active.cursor = outcome.cursor;
    Object.assign(snapshot, { ...next, state: snapshot.state, message: snapshot.message, endedAt: snapshot.endedAt });
    this.history.push(metric);
    if (this.history.length > this.deps.options.historyLimit) this.history.splice(0, this.history.length - this.deps.options.historyLimit);
    for (const c of contributions) {
      this.addCredit(c.nodeId, c.status, c.samples);
      this.publishNode(c.nodeId);
    }
    if (!outcome.apply) {
      this.log('warn', `round ${open.round} not applied (${why}): ${outcome.reason}`);
      this.recordTimeline('round-not-applied', `round ${open.round} not applied (${why}): ${outcome.reason}`);
    }
    this.publish({ type: 'metric', sessionId: snapshot.id, metric });
    this.publishStatus();

    const rounds = snapshot.round;
    if (rounds % active.config.evalEvery === 0) this.evaluate(active, rounds, metric);
    if (rounds - active.lastCheckpointRound >= active.config.checkpointEvery) {
      const pending = this.writeCheckpoint(active);
      this.track(pending, 'write a checkpoint');
    }
    if (this.completionPending) {
      await this.confirmCompletion(active);
      return;
    }
    const roundLimit = active.config.maxRounds !== null && rounds >= active.config.maxRounds;
    const sampleBudget = active.config.maxSamples !== null && snapshot.totalSamples >= active.config.maxSamples;
    if ((roundLimit || sampleBudget) && (snapshot.state === 'running' || snapshot.state === 'paused')) {
      // Let the last evaluation land before the session ends, so its final accuracy is known.
      await this.evaluateNow(active, rounds, metric, true);
      if (snapshot.state === 'running' || snapshot.state === 'paused') {
        await this.endSession('completed', roundLimit ? `reached ${rounds} rounds` : `applied its budget of ${active.config.maxSamples} samples (${snapshot.totalSamples})`, true);
      }
    }
  }

  private cancelOpenRound(reason: string): void {
    const open = this.open;
    if (!open || !this.active) return;
    this.clearRoundTimers();
    for (const update of open.accepted.values()) {
      this.deps.aggregator.release(update.slot);
      // Received but never applied: the ledger says so, with why.
      const record: ContributionRecord = {
        sessionId: open.sessionId,
        round: open.round,
        nodeId: update.nodeId,
        attempt: update.attempt,
        samples: update.samples,
        epoch: 0,
        shardStart: 0,
        shardCount: 0,
        checksum: update.checksum,
        trainLoss: Number.isFinite(update.trainLoss) ? update.trainLoss : 0,
        status: 'rejected',
        reason: `CANCELLED: round ${open.round} was cancelled: ${reason}`,
        receivedAt: update.receivedAt,
      };
      this.track(this.deps.repo.recordRejection(record), 'record a cancelled update');
    }
    for (const nodeId of open.assignments.keys()) {
      const entry = this.registry.get(nodeId);
      entry?.link?.sendJson({ v: 1, type: 'cancel', round: open.round, reason });
      if (entry) entry.assignedAt = null;
      if (entry && entry.snapshot.status === 'training') this.setNodeStatus(nodeId, 'idle', reason);
    }
    const outcome = closeRound({ ...open, accepted: new Map() }, this.active.cursor, { minUpdates: Number.POSITIVE_INFINITY, minCompletion: 1 }, this.deps.clock.now());
    this.active.cursor = outcome.cursor;
    this.open = null;
  }

  // ---------------------------------------------------------------- evaluation, checkpoints, completion

  private evaluate(active: ActiveSession, round: number, metric: MetricPoint): void {
    this.track(this.evaluateNow(active, round, metric), 'evaluate the model');
  }

  /** `fromClose`: called while the round that triggered it is still being closed (see endSession). */
  private async evaluateNow(active: ActiveSession, round: number, metric: MetricPoint, fromClose = false): Promise<void> {
    if (!active.evaluator || metric.testAccuracy !== null) return;
    const evaluatedVersion = active.snapshot.modelVersion;
    const result = await active.evaluator.evaluate(active.params.slice());
    metric.testLoss = result.loss;
    metric.testAccuracy = result.accuracy;
    active.snapshot.lastTestAccuracy = result.accuracy;
    active.snapshot.lastTestLoss = result.loss;
    await this.deps.repo.recordEvaluation(active.snapshot.id, round, result.loss, result.accuracy);
    this.log('info', `round ${round}: test accuracy ${(result.accuracy * 100).toFixed(2)}%, test loss ${result.loss.toFixed(4)}, ${Math.round(active.snapshot.samplesPerSecond)} samples/s`);
    this.publish({ type: 'metric', sessionId: active.snapshot.id, metric });
    const target = active.config.targetAccuracy;
    const live = (active.snapshot.state === 'running' || active.snapshot.state === 'paused') && this.active === active;
    if (target === null || result.accuracy < target || !live) {
      this.publishStatus();
      return;
    }
    const reached = `reached test accuracy ${(result.accuracy * 100).toFixed(2)}% (target ${(target * 100).toFixed(2)}%) at round ${round}`;
    if (fromClose || (evaluatedVersion === active.snapshot.modelVersion && !this.open && !this.closing)) {
      await this.endSession('completed', reached, fromClose);
      return;
    }
    // Rounds went on while this evaluation ran, so the model now is not the one that reached the target.
    // Open no new round; once the round in flight closes, the model as it is then must pass as well.
    this.completionPending = true;
    this.log('info', `${reached}; confirming on the final model`);
    if (!this.open && !this.closing) await this.confirmCompletion(active);
  }

  private completionPending = false;

  /** The session completes on a model that itself meets the target; if it does not, training carries on. */
  private async confirmCompletion(active: ActiveSession): Promise<void> {
    this.completionPending = false;
    try {
      const last = this.history.at(-1);
      const target = active.config.targetAccuracy;
      if (!active.evaluator || !last || target === null || this.active !== active || active.snapshot.state !== 'running') return;
      if (last.testAccuracy === null) await this.evaluateNow(active, last.round, last, true);
      const accuracy = last.testAccuracy;
      if (this.active !== active || active.snapshot.state !== 'running') return;
      if (accuracy !== null && accuracy >= target) {
        await this.endSession('completed', `reached test accuracy ${(accuracy * 100).toFixed(2)}% (target ${(target * 100).toFixed(2)}%) at round ${last.round}`, true);
      } else {
        this.log('info', `the model at round ${last.round} scores ${((accuracy ?? 0) * 100).toFixed(2)}%, below the target after all; training continues`);
      }
    } finally {
      this.maybeOpenRound();
    }
  }

  /**
   * Ends the session. Setting the state first stops new rounds from opening. A round being applied finishes
   * first; one still collecting is cancelled and its shards returned. `fromClose` means the caller is the
   * close of the current round itself, which must not wait for itself and whose updates were applied.
   */
  private async endSession(state: 'stopped' | 'completed', message: string, fromClose = false): Promise<void> {
    const active = this.active;
    if (!active) return;
    active.snapshot.state = state;
    active.snapshot.message = message;
    active.snapshot.endedAt = this.deps.clock.now();
    this.log('info', `session ${active.snapshot.id} ${state}: ${message}`);
    this.recordTimeline(state === 'completed' ? 'session-completed' : 'session-stopped', message);
    if (!fromClose) {
      if (this.closing) await this.closing;
      this.cancelOpenRound(`session ${state}`);
    }
    await this.evaluateFinalModel(active);
    await this.writeCheckpoint(active);
    await this.deps.repo.updateSession(active.snapshot);
    // The evaluator is a worker thread holding tfjs and the test set (100+ MB): an ended session lets it go.
    const evaluator = active.evaluator;
    active.evaluator = null;
    await evaluator?.close().catch((error) => this.log('warn', `closing the evaluator failed: ${errorText(error)}`));
    this.broadcastSession();
    this.publishStatus();
  }

  private checkpointChain: Promise<unknown> = Promise.resolve();

  /** Checkpoints are written one at a time, from a copy, so training can go on while the file is written. */
  private writeCheckpoint(active: ActiveSession): Promise<void> {
    const snapshot = active.snapshot;
    if (active.lastCheckpointRound === snapshot.round && snapshot.round > 0) return this.checkpointChain.then(() => undefined);
    active.lastCheckpointRound = snapshot.round;
    const payload = {
      sessionId: snapshot.id,
      round: snapshot.round,
      modelVersion: snapshot.modelVersion,
      params: active.params.slice(),
      optimizerState: active.optimizer.slots.map((s) => s.slice()),
      optimizerStep: active.optimizer.step,
    };
    const run = this.checkpointChain.then(async () => {
      const written = await this.deps.checkpoints.write(payload);
      const record: CheckpointRecord = {
        sessionId: payload.sessionId,
        round: payload.round,
        modelVersion: payload.modelVersion,
        sha256: written.sha256,
        path: written.path,
        bytes: written.bytes,
        createdAt: this.deps.clock.now(),
      };
      await this.deps.repo.recordCheckpoint(record);
      // Everything up to this version is inside a durable checkpoint now.
      await this.deps.journal.compact(payload.sessionId, payload.modelVersion);
      this.log('info', `checkpoint at round ${payload.round} (model version ${payload.modelVersion}): ${(written.bytes / 1e6).toFixed(2)} MB, sha256 ${written.sha256.slice(0, 12)}…`);
    });
    this.checkpointChain = run.catch(() => undefined);
    return run;
  }

  /**
   * Rounds keep running while an evaluation is in flight, so the model that ends a session is usually a few
   * versions past the one that reached the target. Its own accuracy is the one the session reports.
   */
  private async evaluateFinalModel(active: ActiveSession): Promise<void> {
    const last = this.history.at(-1);
    if (!active.evaluator || !last || last.round !== active.snapshot.round || last.testAccuracy !== null) return;
    try {
      await this.evaluateNow(active, last.round, last, true);
    } catch (error) {
      this.log('warn', `final evaluation failed: ${errorText(error)}`);
    }
  }

  private async startEvaluator(): Promise<void> {
    const active = this.active!;
    try {
      active.evaluator = await this.deps.createEvaluator(active.config.model, active.config.dataset);
    } catch (error) {
      this.log('error', `test-set evaluation unavailable: ${errorText(error)}`);
    }
  }

  private async describeDataset(id: string): Promise<{ trainSize: number; testSize: number }> {
    try {
      return await this.deps.datasets.describe(id);
    } catch (error) {
      throw new RequestError('BAD_REQUEST', `dataset ${id} cannot be used: ${errorText(error)}`);
    }
  }

  // ---------------------------------------------------------------- heartbeats

  private scheduleSweep(): void {
    // Sweep often enough that a silent node is failed within a tenth of the timeout after it expires.
    const interval = Math.max(20, Math.floor(this.deps.options.heartbeatTimeoutMs / 10));
    this.cancelSweep = this.deps.clock.setTimeout(() => {
      this.sweepHeartbeats();
      if (!this.shuttingDown) this.scheduleSweep();
    }, interval);
  }

  /** A node that stays silent past the timeout is failed even though its socket never closed. */
  sweepHeartbeats(): void {
    const now = this.deps.clock.now();
    for (const [nodeId, entry] of this.registry) {
      if (!entry.link) continue;
      const silentFor = now - entry.snapshot.lastHeartbeatAt;
      if (silentFor > this.deps.options.heartbeatTimeoutMs) {
        const link = entry.link;
        const reason = `no heartbeat for ${silentFor} ms (timeout ${this.deps.options.heartbeatTimeoutMs} ms)`;
        this.disconnect(nodeId, link, reason);
        link.close(CLOSE_CODES.heartbeatTimeout, reason);
      }
    }
  }

  // ---------------------------------------------------------------- read side

  status(): StatusSnapshot {
    const nodes = [...this.registry.values()].map((n) => n.snapshot);
    const active = this.active?.snapshot ?? null;
    return {
      state: active?.state ?? 'idle',
      sessionId: active?.id ?? null,
      round: active?.round ?? 0,
      modelVersion: active?.modelVersion ?? 0,
      nodes: {
        total: nodes.length,
        active: nodes.filter((n) => n.status === 'idle' || n.status === 'training').length,
        training: nodes.filter((n) => n.status === 'training').length,
        failed: nodes.filter((n) => n.status === 'failed').length,
      },
      session: active ? { ...active, config: { ...active.config } } : null,
      startedAt: this.startedAt,
      now: this.deps.clock.now(),
    };
  }

  dashboard(): DashboardSnapshot {
    return { status: this.status(), nodes: this.nodeList(), metrics: this.history.slice(), logs: this.logs.slice(), timeline: this.timeline.slice() };
  }

  nodes(): NodeSnapshot[] {
    return this.nodeList();
  }

  private nodeList(): NodeSnapshot[] {
    return [...this.registry.values()].map((n) => ({ ...n.snapshot })).sort((a, b) => a.id - b.id);
  }

  node(id: number): NodeSnapshot | null {
    const entry = this.registry.get(id);
    return entry ? { ...entry.snapshot } : null;
  }

  private async metricHistory(sessionId: number | undefined, limit: number): Promise<MetricPoint[]> {
    if (sessionId === undefined || sessionId === this.active?.snapshot.id) return this.history.slice(-limit);
    return (await this.deps.repo.listMetrics(sessionId, limit)).sort((a, b) => a.round - b.round);
  }

  async metrics(sessionId?: number, limit = 10_000): Promise<{ latest: MetricPoint | null; history: MetricPoint[] }> {
    const history = await this.metricHistory(sessionId, limit);
    return { latest: history.at(-1) ?? null, history };
  }

  sessions(limit: number): Promise<SessionSnapshot[]> {
    return this.deps.repo.listSessions(limit);
  }

  async session(id: number): Promise<SessionSnapshot | null> {
    if (this.active?.snapshot.id === id) return { ...this.active.snapshot };
    return this.deps.repo.getSession(id);
  }

  async sessionEvents(sessionId: number, limit = TIMELINE_LIMIT): Promise<SessionEvent[]> {
    return this.deps.repo.listEvents(sessionId, limit);
  }

  /** The exactly-once audit of a session's ledger (see services/ledger.ts). */
  async ledger(sessionId: number): Promise<LedgerReport> {
    const session = await this.session(sessionId);
    if (!session) throw new RequestError('NOT_FOUND', `session ${sessionId} does not exist`);
    const [rounds, contributions] = await Promise.all([this.deps.repo.listRounds(sessionId), this.deps.repo.listContributions(sessionId)]);
    const { trainSize } = await this.describeDataset(session.config.dataset);
    return verifyLedger(session, rounds, contributions, trainSize);
  }

  rounds(sessionId: number): Promise<RoundSummary[]> {
    return this.deps.repo.listRounds(sessionId);
  }

  contributions(sessionId: number): Promise<ContributionRecord[]> {
    return this.deps.repo.listContributions(sessionId);
  }

  checkpoints(sessionId: number): Promise<CheckpointRecord[]> {
    return this.deps.repo.listCheckpoints(sessionId);
  }

  /** Test support and headless summaries: the parameters the coordinator holds now. */
  currentParams(): Float32Array | null {
    return this.active?.params ?? null;
  }

  // ---------------------------------------------------------------- helpers

  private requireActive(states: SessionSnapshot['state'][], verb: string): ActiveSession {
    const active = this.active;
    if (!active) throw new RequestError('CONFLICT', `there is no session to ${verb}; start one first`);
    if (!states.includes(active.snapshot.state)) {
      throw new RequestError('CONFLICT', `cannot ${verb} session ${active.snapshot.id}: it is ${active.snapshot.state}`);
    }
    return active;
  }

  private sessionDescriptor(): SessionDescriptor | null {
    const active = this.active;
    if (!active || (active.snapshot.state !== 'running' && active.snapshot.state !== 'paused')) return null;
    return { sessionId: active.snapshot.id, model: active.config.model, dataset: active.config.dataset, seed: active.config.seed, paramCount: active.paramCount };
  }

  private broadcastSession(): void {
    const session = this.sessionDescriptor();
    for (const entry of this.registry.values()) {
      if (!entry.link) continue;
      entry.readySession = null;
      entry.link.sendJson({ v: 1, type: 'session', session });
    }
  }

  /** Per-node credit in the active session, kept apart from the registry so it survives reconnects. */
  private readonly credits = new Map<number, { acceptedContributions: number; rejectedContributions: number; acceptedSamples: number }>();

  private creditOf(nodeId: number) {
    return { ...(this.credits.get(nodeId) ?? { acceptedContributions: 0, rejectedContributions: 0, acceptedSamples: 0 }) };
  }

  private addCredit(nodeId: number, status: 'applied' | 'rejected', samples: number): void {
    const credit = this.creditOf(nodeId);
    if (status === 'applied') {
      credit.acceptedContributions += 1;
      credit.acceptedSamples += samples;
    } else {
      credit.rejectedContributions += 1;
    }
    this.credits.set(nodeId, credit);
    const entry = this.registry.get(nodeId);
    if (entry) Object.assign(entry.snapshot, credit);
  }

  private resetNodeCounters(): void {
    this.credits.clear();
    for (const [id, entry] of this.registry) {
      Object.assign(entry.snapshot, this.creditOf(id));
      this.publishNode(id);
    }
  }

  /** Rebuilds every node's credit in a resumed session from its ledger. */
  private async restoreNodeCounters(sessionId: number): Promise<void> {
    const contributions = await this.deps.repo.listContributions(sessionId);
    this.resetNodeCounters();
    for (const c of contributions) this.addCredit(c.nodeId, c.status, c.samples);
  }

  private setNodeStatus(nodeId: number, status: NodeSnapshot['status'], reason: string): void {
    const entry = this.registry.get(nodeId);
    if (!entry) return;
    if (entry.snapshot.status !== status) entry.snapshot.statusChangedAt = this.deps.clock.now();
    entry.snapshot.status = status;
    entry.snapshot.statusReason = reason;
    if (status !== 'training') entry.snapshot.currentRound = null;
    this.publishNode(nodeId);
  }

  /** Samples per second over the last rounds (wall time from the first of them opening to the last closing). */
  private recentThroughput(latest: MetricPoint): number {
    // Only rounds run by this process: after a resume, the gap since the last run is not training time.
    const window = [...this.history.slice(-19), latest].filter((m) => m.at >= this.startedAt);
    if (window.length === 0) return 0;
    const first = window[0];
    const last = window[window.length - 1];
    const span = last.at - (first.at - first.roundDurationMs);
    const samples = window.reduce((sum, m) => sum + m.samples, 0);
    return span > 0 ? (samples * 1000) / span : 0;
  }

  /** Adds to the current session's durable timeline and tells live viewers. */
  private recordTimeline(kind: SessionEventKind, message: string, nodeId: number | null = null, detail: SessionEvent['detail'] = null): void {
    const active = this.active;
    if (!active) return;
    const event: SessionEvent = { sessionId: active.snapshot.id, at: this.deps.clock.now(), round: active.snapshot.round, kind, message, nodeId, detail };
    this.timeline.push(event);
    if (this.timeline.length > TIMELINE_LIMIT) this.timeline.shift();
    this.track(this.deps.repo.recordEvent(event), 'record a timeline event');
    this.publish({ type: 'timeline', event });
  }

  private publishNode(nodeId: number): void {
    const entry = this.registry.get(nodeId);
    if (entry) this.publish({ type: 'node', node: { ...entry.snapshot } });
  }

  private publishStatus(): void {
    const status = this.status();
    this.publish({ type: 'status', status });
    if (this.active) {
      const snapshot = this.active.snapshot;
      this.sessionWaiters = this.sessionWaiters.filter((w) => {
        if (!w.predicate(snapshot)) return true;
        w.resolve(snapshot);
        return false;
      });
    }
  }

  private publish(event: CoordinatorEvent): void {
    this.events.publish(event);
  }

  private log(level: LogLine['level'], message: string): void {
    const line: LogLine = { at: this.deps.clock.now(), level, message };
    this.logs.push(line);
    if (this.logs.length > LOG_LIMIT) this.logs.shift();
    this.deps.log?.(line);
    this.publish({ type: 'log', line });
  }

  /** Background work whose failure must be logged, and which shutdown waits for. */
  private track(promise: Promise<unknown>, what: string): void {
    // A set, not a growing chain of Promise.all: finished work must not stay reachable for the process's life.
    const guarded: Promise<unknown> = promise
      .catch((error) => this.log('error', `failed to ${what}: ${errorText(error)}`))
      .finally(() => this.background.delete(guarded));
    this.background.add(guarded);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
