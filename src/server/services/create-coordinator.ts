// Wires the coordinator's services around the engine: runner, model store, live view, outbox and its
// consumers (live view, evaluation, checkpointer), the agent channel and the API-facing service. Takes ports
// only; runtime.ts hands it the real adapters and the unit tests hand it fakes.
import type { LogLine } from '../core/events';
import { initialState, type EngineOptions } from '../core/engine/state';
import { DEFAULT_DEADLINE_POLICY } from '../core/deadline';
import type { Aggregator, CheckpointStore, Clock, Credentials, DatasetCatalog, EventPublisher, Evaluator, ModelCatalog, OptimizerKernels, TrainingRepository, UpdateJournal } from '../core/ports';
import type { ModelName } from '../core/types';
import type { SessionConfigInput } from '../core/session-config';
import { AgentChannel } from './agent-channel';
import { Audits, type AuditsDeps } from './audits';
import type { Wallets } from './wallets';
import { Checkpointer } from './checkpointer';
import { CoordinatorService } from './control';
import { Evaluations } from './evaluations';
import type { Admission } from './join-tokens';
import { LiveView } from './live-view';
import { ModelStore } from './model-store';
import { OutboxDispatcher, type OutboxConsumer } from './outbox';
import { errorText, Runner } from './runner';

export interface CoordinatorPorts {
  repo: TrainingRepository;
  checkpoints: CheckpointStore;
  journal: UpdateJournal;
  aggregator: Aggregator;
  /** Where the model store runs the outer optimizer's step (a SIMD kernel); absent or null: core/optimizer.ts. */
  optimizerKernels?: OptimizerKernels | null;
  createEvaluator(model: ModelName, dataset: string): Promise<Evaluator>;
  models: ModelCatalog;
  datasets: DatasetCatalog;
  clock: Clock;
  credentials: Credentials;
  events: EventPublisher;
  options: { heartbeatMs: number; heartbeatTimeoutMs: number; historyLimit: number; deadline?: Partial<EngineOptions['deadline']>; normRatio?: number; keepCheckpoints?: number };
  /** More outbox consumers (settlement, exporters) beside the built-in ones. */
  consumers?: OutboxConsumer[];
  /** Verified work: the audit ledger and the auditor worker; absent: no audits (unit tests of other parts). */
  audits?: Pick<AuditsDeps, 'store' | 'createAuditor' | 'random' | 'rate' | 'spill' | 'limits'>;
  /** Who may register a new node name (join tokens); absent: anyone. */
  admission?: Admission;
  /** Settings a session gets unless its request says otherwise (OPEN_POOL_DEFAULTS in an open pool). */
  sessionDefaults?: SessionConfigInput;
  /** Node wallets (challenge at connect, signature at hello); absent: no wallets, nobody is paid. */
  wallets?: Wallets;
  log?: (line: LogLine) => void;
}

export interface Coordinator {
  service: CoordinatorService;
  channel: AgentChannel;
  runner: Runner;
  /** Catches the outbox consumers up and arms the heartbeat sweep. Call once, before the server listens. */
  start(): Promise<void>;
}

export async function createCoordinator(ports: CoordinatorPorts): Promise<Coordinator> {
  const { repo, clock } = ports;
  const engineOptions: EngineOptions = {
    heartbeatMs: ports.options.heartbeatMs,
    heartbeatTimeoutMs: ports.options.heartbeatTimeoutMs,
    deadline: { ...DEFAULT_DEADLINE_POLICY, ...ports.options.deadline },
    normRatio: ports.options.normRatio ?? 10,
  };
  const model = new ModelStore(ports.models, ports.optimizerKernels ?? null);
  const live = new LiveView(ports.events, ports.options.historyLimit);
  // The runner is created below; the services that report back to it reach it through this late binding.
  let runner: Runner | null = null;
  const log = (level: LogLine['level'], message: string) => runner?.log(level, message);
  const sessionView = (sessionId: number) => {
    const session = runner?.state.durable.sessions.get(sessionId);
    return session ? { config: session.config, round: session.round } : null;
  };
  const evaluations = new Evaluations({
    createEvaluator: ports.createEvaluator,
    model,
    session: sessionView,
    log,
    report: (sessionId, purpose, result) =>
      runner?.dispatch(
        result.ok
          ? { type: 'evaluation-done', at: clock.now(), sessionId, round: result.round, modelVersion: result.modelVersion, loss: result.loss, accuracy: result.accuracy, purpose }
          : { type: 'evaluation-failed', at: clock.now(), sessionId, round: result.round, purpose, message: result.message },
      ),
  });
  const checkpointer = new Checkpointer({ repo, checkpoints: ports.checkpoints, journal: ports.journal, model, clock, session: sessionView, log, keep: ports.options.keepCheckpoints });
  const liveConsumer: OutboxConsumer = {
    name: 'live-view',
    handle: ({ event }, catchingUp) => {
      if (!catchingUp && event.kind === 'round-committed') live.addMetric(event.sessionId, event.metric);
    },
  };
  let outboxRef: OutboxDispatcher | null = null;
  const audits = ports.audits
    ? new Audits({
        ...ports.audits,
        model,
        clock,
        session: sessionView,
        deliver: (records) => outboxRef?.deliver(records),
        report: (event, reasons) => runner?.dispatch({ type: 'epoch-audited', at: clock.now(), event, reasons }),
        log,
      })
    : null;
  const outbox = new OutboxDispatcher(repo, clock, [liveConsumer, evaluations, checkpointer, ...(audits ? [audits] : []), ...(ports.consumers ?? [])], (consumer, error) =>
    log('error', `outbox consumer ${consumer} failed: ${errorText(error)}`),
  );
  outboxRef = outbox;
  const lastSessionId = await repo.lastSessionId();
  runner = new Runner(initialState(engineOptions, clock.now(), lastSessionId), {
    repo,
    journal: ports.journal,
    aggregator: ports.aggregator,
    clock,
    model,
    live,
    evaluations,
    checkpointer,
    ...(audits ? { audits } : {}),
    deliver: (records) => outbox.deliver(records),
    log: ports.log,
  });
  const service = new CoordinatorService({
    runner,
    repo,
    live,
    model,
    evaluations,
    outbox,
    datasets: ports.datasets,
    recovery: {
      repo,
      checkpoints: ports.checkpoints,
      journal: ports.journal,
      model,
      describeDataset: (id) => ports.datasets.describe(id),
      ...(ports.audits ? { forfeits: (sessionId: number) => ports.audits!.store.listForfeits(sessionId) } : {}),
    },
    clock,
    events: ports.events,
    historyLimit: ports.options.historyLimit,
    sessionDefaults: ports.sessionDefaults,
  });
  const channel = new AgentChannel(runner, repo, ports.credentials, clock, ports.admission ?? null, ports.wallets ?? null);
  const started = runner;
  return {
    service,
    channel,
    runner: started,
    async start() {
      await checkpointer.sweep();
      await outbox.start();
      started.dispatch({ type: 'booted', at: clock.now(), seed: ports.credentials.seed() });
    },
  };
}
