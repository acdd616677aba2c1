// The coordinator as the API and the server entry see it: commands go to the engine through the runner and
// resolve with its reply; reads come from the engine's state, the live view, or the repository.
import { RequestError } from '../../protocol/errors';
import { checksum32 } from '../../protocol/frame';
import { CLOSE_CODES } from '../../protocol/messages';
import { verifyLedger, type LedgerReport } from '../core/ledger';
import type { DashboardSnapshot, StatusSnapshot } from '../core/events';
import { nodeSnapshot, nodeSnapshots, sessionSnapshot, statusOf } from '../core/engine/views';
import type { Clock, DatasetCatalog, DatasetListing, EventPublisher, ExportedModel, RoundRange, TrainingRepository } from '../core/ports';
import { resolveSessionConfig, type SessionConfigInput } from '../core/session-config';
import type { CheckpointRecord, ContributionRecord, MetricPoint, NodeSnapshot, RoundSummary, SessionConfig, SessionEvent, SessionSnapshot } from '../core/types';
import type { Evaluations } from './evaluations';
import type { LiveView } from './live-view';
import { TIMELINE_LIMIT } from './live-view';
import type { ModelStore } from './model-store';
import type { OutboxDispatcher } from './outbox';
import { readCheckpointParams, recoverSession, type RecoveryDeps } from './recovery';
import { errorText, type Runner } from './runner';
import type { TrainingControl } from './training-control';

export interface CoordinatorServiceDeps {
  runner: Runner;
  repo: TrainingRepository;
  live: LiveView;
  model: ModelStore;
  evaluations: Evaluations;
  outbox: OutboxDispatcher;
  datasets: DatasetCatalog;
  recovery: RecoveryDeps;
  clock: Clock;
  events: EventPublisher;
  historyLimit: number;
  /** Settings a session gets unless its request says otherwise (an open pool's robust aggregation). */
  sessionDefaults?: SessionConfigInput;
}

/** An interrupted session exists but could not be resumed; message says why (and it is in the session's row). */
export class ResumeFailedError extends Error {
  constructor(
    readonly sessionId: number | null,
    message: string,
  ) {
    super(message);
    this.name = 'ResumeFailedError';
  }
}

export class CoordinatorService implements TrainingControl {
  readonly events: EventPublisher;

  constructor(private readonly deps: CoordinatorServiceDeps) {
    this.events = deps.events;
  }

  private get state() {
    return this.deps.runner.state;
  }

  // ------------------------------------------------------------------ commands

  async start(input: SessionConfigInput): Promise<SessionSnapshot> {
    let base: SessionConfig | undefined;
    if (input.initFrom) {
      // From a checkpoint: the source session's settings are the defaults (its model above all: the weights fit
      // no other), and its weights are loaded before the engine is asked, so the start itself stays synchronous.
      const { sessionId, round } = input.initFrom;
      const source = await this.session(sessionId);
      if (!source) throw new RequestError('NOT_FOUND', `session ${sessionId} does not exist`);
      if (input.model && input.model !== source.config.model) {
        throw new RequestError('BAD_REQUEST', `session ${sessionId} trained model ${source.config.model}; its checkpoint cannot start a ${input.model}`);
      }
      const { initFrom: _sourceOrigin, ...sourceConfig } = source.config;
      base = sourceConfig;
      this.deps.model.preset(input.initFrom, await readCheckpointParams(this.deps.recovery, sessionId, round));
    }
    // Open-pool defaults (a robust rule) sit under what the request says, above the source session's settings.
    const defaults = this.deps.sessionDefaults ?? {};
    const explicit = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
    const config = resolveSessionConfig({ ...defaults, ...explicit }, base);
    const { trainSize } = await this.describeDataset(config.dataset);
    const paramCount = this.deps.model.paramCount(config.model);
    const session = await this.deps.runner.request((requestId, at) => ({ type: 'start', at, requestId, config, trainSize, paramCount }));
    return session!;
  }

  async pause(): Promise<SessionSnapshot> {
    return (await this.deps.runner.request((requestId, at) => ({ type: 'pause', at, requestId })))!;
  }

  async kick(nodeId: number, options: { banSeconds: number | null; reason: string }): Promise<void> {
    await this.deps.runner.request((requestId, at) => ({ type: 'kick', at, requestId, nodeId, banMs: options.banSeconds === null ? null : options.banSeconds * 1000, reason: options.reason }));
  }

  async resume(): Promise<SessionSnapshot> {
    return (await this.deps.runner.request((requestId, at) => ({ type: 'resume', at, requestId })))!;
  }

  async stop(): Promise<SessionSnapshot> {
    return (await this.deps.runner.request((requestId, at) => ({ type: 'stop', at, requestId })))!;
  }

  /**
   * Picks up the session that was running or paused when the coordinator last stopped. Returns null when
   * there is none. Throws ResumeFailedError when there is one but it cannot be resumed: when its model cannot
   * be rebuilt exactly, that session is marked failed, with why; when recovery itself threw (an unreadable
   * file, a dataset that is gone), the session stays resumable and its message says what went wrong. Either
   * way the caller must not quietly start another session in its place.
   */
  async resumeInterrupted(): Promise<SessionSnapshot | null> {
    let result: Awaited<ReturnType<typeof recoverSession>>;
    try {
      result = await recoverSession(this.deps.recovery, this.deps.historyLimit);
    } catch (error) {
      const saved = await this.deps.repo.findResumableSession().catch(() => null);
      const message = `resume failed: ${errorText(error)}; the session stays resumable (fix the cause and restart, or start with --fresh)`;
      if (saved) {
        await this.deps.repo.updateSession({ ...saved, message }, []).catch(() => undefined);
        this.deps.runner.log('error', `session ${saved.id}: ${message}`);
      }
      throw new ResumeFailedError(saved?.id ?? null, message);
    }
    if (!result) return null;
    if ('failed' in result) {
      const at = this.deps.clock.now();
      await this.deps.repo.updateSession({ ...result.failed, state: 'failed', message: result.message, endedAt: at }, [
        { kind: 'session-state-changed', sessionId: result.failed.id, at, state: 'failed', message: result.message, endedAt: at },
      ]);
      this.deps.runner.log('error', `session ${result.failed.id}: ${result.message}`);
      throw new ResumeFailedError(result.failed.id, result.message);
    }
    const r = result.recovered;
    for (const why of r.skipped) this.deps.runner.log('warn', `session ${r.session.id}: ${why}; trying an older one`);
    if (r.skipped.length) this.deps.runner.log('warn', `session ${r.session.id}: recovered from ${r.how}`);
    this.deps.model.load(r.model, r.session.config);
    this.deps.live.reset(r.session.id, r.recent, await this.deps.repo.listEvents(r.session.id, TIMELINE_LIMIT));
    return this.deps.runner.request((requestId, at) => ({
      type: 'recovered',
      at,
      requestId,
      session: r.session,
      credits: r.credits,
      recent: r.recent.slice(-20),
      lastTestAccuracy: r.snapshot.lastTestAccuracy,
      lastTestLoss: r.snapshot.lastTestLoss,
      how: r.how,
      detail: r.detail,
    }));
  }

  /** Resolves when the current session reaches a state the predicate accepts (headless mode waits on it). */
  waitForSession(predicate: (s: SessionSnapshot) => boolean): Promise<SessionSnapshot> {
    return this.deps.runner.waitForSession(predicate);
  }

  /** Graceful shutdown: the round in flight commits or is cancelled, a final checkpoint, the session left resumable. */
  async shutdown(): Promise<void> {
    try {
      await this.deps.runner.request((requestId, at) => ({ type: 'shutdown', at, requestId }));
    } catch (error) {
      this.deps.runner.log('warn', `shutdown: ${errorText(error)}`);
    }
    await this.deps.runner.settle();
    await this.deps.outbox.close();
    await this.deps.evaluations.stop();
    this.deps.runner.closeAllLinks(CLOSE_CODES.shuttingDown, 'coordinator shutting down');
  }

  // ------------------------------------------------------------------ reads

  status(): StatusSnapshot {
    return statusOf(this.state, this.deps.clock.now());
  }

  dashboard(): DashboardSnapshot {
    const live = this.deps.live;
    return { status: this.status(), nodes: nodeSnapshots(this.state), metrics: live.metrics(this.deps.historyLimit), logs: live.logs(), timeline: live.timeline() };
  }

  nodes(): NodeSnapshot[] {
    return nodeSnapshots(this.state);
  }

  node(id: number): NodeSnapshot | null {
    return nodeSnapshot(this.state, id);
  }

  async metrics(sessionId?: number, limit = 10_000): Promise<{ latest: MetricPoint | null; history: MetricPoint[] }> {
    const current = this.state.session?.id;
    const history =
      sessionId === undefined || sessionId === current ? this.deps.live.metrics(limit) : (await this.deps.repo.listMetrics(sessionId, limit)).sort((a, b) => a.round - b.round);
    return { latest: history.at(-1) ?? null, history };
  }

  sessions(limit: number): Promise<SessionSnapshot[]> {
    return this.deps.repo.listSessions(limit);
  }

  async session(id: number): Promise<SessionSnapshot | null> {
    const current = sessionSnapshot(this.state);
    if (current?.id === id) return current;
    return this.deps.repo.getSession(id);
  }

  sessionEvents(sessionId: number, limit = TIMELINE_LIMIT): Promise<SessionEvent[]> {
    return this.deps.repo.listEvents(sessionId, limit);
  }

  /** The exactly-once audit of a session's ledger (see core/ledger.ts). */
  async ledger(sessionId: number): Promise<LedgerReport> {
    const session = await this.session(sessionId);
    if (!session) throw new RequestError('NOT_FOUND', `session ${sessionId} does not exist`);
    const [rounds, contributions] = await Promise.all([this.deps.repo.listRounds(sessionId), this.deps.repo.listContributions(sessionId)]);
    const { trainSize } = await this.describeDataset(session.config.dataset);
    return verifyLedger(session, rounds, contributions, trainSize);
  }

  rounds(sessionId: number, range?: RoundRange): Promise<RoundSummary[]> {
    return this.deps.repo.listRounds(sessionId, range);
  }

  contributions(sessionId: number, range?: RoundRange): Promise<ContributionRecord[]> {
    return this.deps.repo.listContributions(sessionId, range);
  }

  checkpoints(sessionId: number): Promise<CheckpointRecord[]> {
    return this.deps.repo.listCheckpoints(sessionId);
  }

  /**
   * A session's model as TensorFlow.js layers files: the checkpoint at `round`, or the latest one (null). The
   * metadata says where it comes from and the test accuracy measured at that round, when one was.
   */
  async modelFiles(sessionId: number, round: number | null, weightsPath: string): Promise<ExportedModel> {
    const session = await this.session(sessionId);
    if (!session) throw new RequestError('NOT_FOUND', `session ${sessionId} does not exist`);
    const checkpoints = await this.deps.repo.listCheckpoints(sessionId);
    const row = round === null ? checkpoints.at(-1) : checkpoints.find((c) => c.round === round);
    if (!row) throw new RequestError('NOT_FOUND', round === null ? `session ${sessionId} has no checkpoint yet` : `session ${sessionId} has no checkpoint at round ${round}`);
    const payload = await this.deps.recovery.checkpoints.read(row.path, row.sha256);
    const metric = (await this.deps.repo.listMetrics(sessionId, 100_000)).find((m) => m.round === row.round);
    const metadata = {
      sessionId,
      round: row.round,
      modelVersion: row.modelVersion,
      model: session.config.model,
      dataset: session.config.dataset,
      sha256: row.sha256,
      testAccuracy: metric?.testAccuracy ?? null,
      // What the model takes: one [28, 28, 1] image per sample, pixels scaled from 0-255 to 0-1.
      input: 'float32 [batch, 28, 28, 1], pixels / 255',
    };
    return this.deps.model.exportLayers(session.config.model, payload.params, { weightsPath, metadata });
  }

  /** The registered datasets with their sizes (a catalogue that cannot list offers none). */
  async datasets(): Promise<DatasetListing[]> {
    return (await this.deps.datasets.list?.()) ?? [];
  }

  /** The test-set evaluator's state, for /health. */
  evaluatorHealth(): { status: 'up' | 'down' | 'idle'; detail: string | null } {
    return this.deps.evaluations.health();
  }

  /** Test support and headless summaries: the parameters the coordinator holds now. */
  modelIdentity(): { sessionId: number | null; modelVersion: number; paramCount: number; checksum: number | null } {
    const model = this.deps.model.model;
    if (!model) return { sessionId: null, modelVersion: 0, paramCount: 0, checksum: null };
    // Version and parameters change together (apply runs synchronously), so they describe one model.
    const { params } = model;
    return { sessionId: model.sessionId, modelVersion: model.modelVersion, paramCount: params.length, checksum: checksum32(new Uint32Array(params.buffer, params.byteOffset, params.length)) };
  }

  currentParams(): Float32Array | null {
    return this.deps.model.model?.params ?? null;
  }

  private async describeDataset(id: string): Promise<{ trainSize: number; testSize: number }> {
    try {
      return await this.deps.datasets.describe(id);
    } catch (error) {
      throw new RequestError('BAD_REQUEST', `dataset ${id} cannot be used: ${errorText(error)}`);
    }
  }
}
