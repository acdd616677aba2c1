// GET /metrics: the coordinator in Prometheus text format (prom-client, on a private registry so that two servers
// in one process, as in the tests, never share or double-register metrics). Two sources:
//  - the event bus, for what happens once per round: a 'metric' event is a committed round (counted once per
//    session and round: an evaluation republishes its round's metric, and that is not a new round);
//  - the coordinator read at scrape time, for levels: nodes by status, the session's accepted and rejected
//    updates (summed over its nodes), its round, its checkpoints.
// Plus the process metrics of prom-client's collectDefaultMetrics (CPU, memory, event loop lag, GC).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { HyperGpuError } from '../../protocol/errors';
import { translateError } from '../core/error-table';
import type { CoordinatorEvent, StatusSnapshot } from '../core/events';
import { checkAccess, type Caller } from '../core/operator-access';
import type { EventPublisher, RoundRange, WorkerMemory } from '../core/ports';
import { reasonCode } from '../core/console-views';
import type { CheckpointRecord, ContributionRecord, NodeSnapshot, NodeStatus } from '../core/types';

/** The path Prometheus scrapes. */
export const METRICS_PATH = '/metrics';

/** What the exporter reads from the coordinator at scrape time (TrainingControl satisfies it). */
export interface MetricsSource {
  status(): StatusSnapshot;
  nodes(): NodeSnapshot[];
  checkpoints(sessionId: number): Promise<CheckpointRecord[]>;
  /** Rejected updates are read from the ledger at scrape time, over the session's recent rounds. */
  contributions?(sessionId: number, range: RoundRange): Promise<ContributionRecord[]>;
  readonly events: EventPublisher;
}

/** Rounds of the current session whose rejections /metrics counts by reason (a scrape reads one page of the ledger). */
export const REJECTION_WINDOW_ROUNDS = 1000;

export interface MetricsExporter {
  /** The exposition text and its content type. */
  scrape(): Promise<{ contentType: string; body: string }>;
  /** Stops listening to the event bus. */
  close(): void;
}

/** Every node status, so that a status with no node reads 0 rather than vanishing from the scrape. */
const NODE_STATUSES = Object.keys({ connecting: true, idle: true, training: true, failed: true, left: true } satisfies Record<NodeStatus, true>);

export function createMetricsExporter(
  source: MetricsSource,
  options: {
    processMetrics?: boolean;
    aggregation?: () => { calls: number; wallMs: number; optimizerSteps?: number };
    /** Each worker thread's own memory, as it last reported it (its V8 heap is not in the process metrics). */
    workerMemory?: () => readonly WorkerMemory[];
    /** Settlement on chain: epochs settled and pending in the ledger, and whether the chain answers. */
    settlement?: () => Promise<{ chain: 'none' | 'up' | 'down'; committed: number; pending: number; lastEpochOnChain: number | null }>;
  } = {},
): MetricsExporter {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'hypergpu_' });

  const rounds = new Counter({ name: 'hypergpu_rounds_total', help: 'Rounds committed since this process started (all sessions).', registers: [registry] });
  const roundDuration = new Histogram({
    name: 'hypergpu_round_duration_seconds',
    help: 'Wall time of a committed round, from opening to commit.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
    registers: [registry],
  });
  const samplesPerSecond = new Gauge({ name: 'hypergpu_samples_per_second', help: 'Training throughput of the last committed round (samples/s).', registers: [registry] });
  const samples = new Counter({ name: 'hypergpu_samples_total', help: 'Samples in rounds committed since this process started.', registers: [registry] });

  let last: { sessionId: number; round: number } | null = null;
  const onEvent = (event: CoordinatorEvent) => {
    if (event.type !== 'metric') return;
    const { sessionId, metric } = event;
    if (last && last.sessionId === sessionId && metric.round <= last.round) return; // an evaluation of a counted round
    last = { sessionId, round: metric.round };
    rounds.inc();
    if (Number.isFinite(metric.roundDurationMs) && metric.roundDurationMs >= 0) roundDuration.observe(metric.roundDurationMs / 1000);
    if (Number.isFinite(metric.samplesPerSecond)) samplesPerSecond.set(metric.samplesPerSecond);
    if (Number.isFinite(metric.samples) && metric.samples > 0) samples.inc(metric.samples);
  };
  const unsubscribe = source.events.subscribe(onEvent);

  new Gauge({
    name: 'hypergpu_nodes',
    help: 'Nodes known to the coordinator, by status.',
    labelNames: ['status'],
    registers: [registry],
    collect() {
      this.reset();
      const counts = new Map(NODE_STATUSES.map((s) => [s, 0]));
      for (const node of source.nodes()) counts.set(node.status, (counts.get(node.status) ?? 0) + 1);
      for (const [status, n] of counts) this.set({ status }, n);
    },
  });
  new Gauge({
    name: 'hypergpu_session_updates',
    help: 'Updates of the current session, accepted into applied rounds or rejected (summed over its nodes; resets when a session starts).',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      let accepted = 0;
      let rejected = 0;
      for (const node of source.nodes()) (accepted += node.acceptedContributions), (rejected += node.rejectedContributions);
      this.set({ result: 'accepted' }, accepted);
      this.set({ result: 'rejected' }, rejected);
    },
  });
  new Gauge({
    name: 'hypergpu_session_round',
    help: 'Round of the current session (0 when none).',
    registers: [registry],
    collect() {
      this.set(source.status().round);
    },
  });
  new Gauge({
    name: 'hypergpu_session_running',
    help: '1 while a session trains, 0 otherwise.',
    registers: [registry],
    collect() {
      this.set(source.status().state === 'running' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'hypergpu_checkpoints',
    help: 'Checkpoints kept for the current session.',
    registers: [registry],
    async collect() {
      const sessionId = source.status().sessionId;
      this.set(sessionId === null ? 0 : (await source.checkpoints(sessionId)).length);
    },
  });

  // The ledger's last REJECTION_WINDOW_ROUNDS rounds, read once per scrape for the gauges below and let go when
  // the scrape is done. Concurrent scrapes cannot mix: prom-client calls every collect() synchronously at the
  // start of registry.metrics(), so each scrape takes its own read before another can begin; a collect() that
  // awaited before ledgerWindow() would break that.
  let window: Promise<ContributionRecord[] | null> | null = null;
  const ledgerWindow = () => {
    window ??= (async () => {
      const status = source.status();
      if (status.sessionId === null || !source.contributions) return null;
      return source.contributions(status.sessionId, { afterRound: Math.max(0, status.round - REJECTION_WINDOW_ROUNDS), rounds: REJECTION_WINDOW_ROUNDS });
    })();
    return window;
  };
  new Gauge({
    name: 'hypergpu_session_updates_clipped',
    help: `Applied updates of the current session that counted scaled down (norm clipping: clipFactor or the norm screen; their samples are credited in full), over its last ${REJECTION_WINDOW_ROUNDS} rounds (read from the ledger).`,
    registers: [registry],
    async collect() {
      const rows = await ledgerWindow();
      this.set(rows ? rows.filter((row) => row.status === 'applied' && row.scale !== undefined).length : 0);
    },
  });
  new Gauge({
    name: 'hypergpu_session_updates_rejected',
    help: `Updates of the current session rejected, by reason code, over its last ${REJECTION_WINDOW_ROUNDS} rounds (read from the ledger).`,
    labelNames: ['reason'],
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await ledgerWindow();
      if (!rows) return;
      const byReason = new Map<string, number>();
      for (const row of rows) if (row.status === 'rejected') byReason.set(reasonCode(row.reason), (byReason.get(reasonCode(row.reason)) ?? 0) + (row.count ?? 1));
      for (const [reason, n] of byReason) this.set({ reason }, n);
    },
  });
  const settlementState = options.settlement;
  if (settlementState) {
    new Gauge({
      name: 'hypergpu_settlements',
      help: 'Epochs planned for settlement in the ledger, by status (committed on chain, or pending).',
      labelNames: ['status'],
      registers: [registry],
      async collect() {
        const state = await settlementState();
        this.set({ status: 'committed' }, state.committed);
        this.set({ status: 'pending' }, state.pending);
      },
    });
    new Gauge({
      name: 'hypergpu_chain_up',
      help: '1 when the settlement chain answers, 0 when it does not (absent without a chain).',
      registers: [registry],
      async collect() {
        this.reset();
        const state = await settlementState();
        if (state.chain !== 'none') this.set(state.chain === 'up' ? 1 : 0);
      },
    });
  }
  if (options.aggregation) {
    const read = options.aggregation;
    // A summary's _sum and _count pair: rate(_sum)/rate(_count) is the mean aggregation time over any window.
    new Counter({
      name: 'hypergpu_aggregation_seconds_total',
      help: 'Time spent aggregating rounds in the worker threads (from the call to the result), since this process started.',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read().wallMs / 1000);
      },
    });
    new Counter({
      name: 'hypergpu_aggregations_total',
      help: 'Aggregations (one per applied round) since this process started.',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read().calls);
      },
    });
    new Counter({
      name: 'hypergpu_optimizer_steps_staged_total',
      help: "Outer optimizer steps an aggregator worker computed while their round's commit was written (models of 262,144 parameters and more; smaller ones step on the main thread), since this process started.",
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read().optimizerSteps ?? 0);
      },
    });
  }

  if (options.workerMemory) {
    const read = options.workerMemory;
    const gauges: Array<[string, string, (m: WorkerMemory) => number]> = [
      ['hypergpu_worker_heap_used_bytes', "A worker thread's own V8 heap in use (the process metrics cover the main thread's isolate only)", (m) => m.heapUsed],
      ['hypergpu_worker_heap_size_bytes', "A worker thread's own V8 heap as allocated from the system", (m) => m.heapTotal],
      ['hypergpu_worker_external_memory_bytes', "Memory outside a worker thread's heap held by its objects (ArrayBuffers among them)", (m) => m.external],
    ];
    for (const [name, help, pick] of gauges) {
      new Gauge({
        name,
        help: `${help}, as it last reported (every 10 s).`,
        labelNames: ['worker'],
        registers: [registry],
        collect() {
          this.reset();
          for (const m of read()) this.set({ worker: m.worker }, pick(m));
        },
      });
    }
  }

  return {
    async scrape() {
      window = null;
      try {
        return { contentType: registry.contentType, body: await registry.metrics() };
      } finally {
        window = null;
      }
    },
    close() {
      unsubscribe();
    },
  };
}

/**
 * Serves GET/HEAD /metrics: public like every read, unless reads are private (HYPERGPU_PRIVATE_READS); errors as
 * the REST facade writes them ({ error: { code, message } } with the error table's status).
 */
export async function serveMetrics(req: IncomingMessage, res: ServerResponse, exporter: MetricsExporter, caller: Caller, privateReads: boolean): Promise<void> {
  const fail = (code: string, message: string) => {
    const json = JSON.stringify({ error: { code, message } });
    if (!res.headersSent) res.writeHead(translateError(code).http, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) });
    res.end(json);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return fail('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${METRICS_PATH}; use GET`);
  }
  try {
    checkAccess('metrics', 'public', caller, privateReads);
    const { contentType, body } = await exporter.scrape();
    res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch (error) {
    fail(error instanceof HyperGpuError ? error.code : 'INTERNAL', error instanceof Error ? error.message : String(error));
  }
}
