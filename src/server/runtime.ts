// Composition root: the one place that builds adapters and services and wires them together.
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { createFastQueryHandler } from './api/trpc-fast-read';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import { createAgentGateway, gatewayLimits, type AgentGateway, type AgentGatewayOptions } from './adapters/agent-gateway';
import { createAggregatorPool } from './adapters/workers/aggregator-pool';
import { createWasmOptimizerKernels } from './adapters/workers/resident-optimizer';
import { createAuditSpill } from './adapters/audit-spill';
import { createFileBlobStore } from './adapters/blob-store';
import { createCheckpointStore } from './adapters/checkpoint-store';
import { createUpdateJournal } from './adapters/journal/update-journal';
import { createPrismaRepository } from './adapters/db/prisma-repository';
import { createEvaluator } from './adapters/workers/evaluator';
import { createAuditor } from './adapters/workers/auditor';
import { WorkerMemoryBoard } from './adapters/workers/supervisor';
import { NodeTimelines } from './services/node-timelines';
import { randomInt } from 'node:crypto';
import { EventBus } from './adapters/event-bus';
import { systemClock } from './adapters/clock';
import { cryptoCredentials } from './adapters/credentials';
import { createOperatorAuth, type OperatorAuthHandle } from './adapters/operator-auth';
import { createMetricsExporter, METRICS_PATH, serveMetrics } from './adapters/metrics-exporter';
import { createEventStream, EVENTS_WS_PATH } from './adapters/event-stream';
import { appRouter } from './api/root';
import { handleRest, sendError, RestError } from './api/rest';
import { createAuthRoutes } from './api/auth-routes';
import { checkHost, checkOrigin, checkPostBody, guardConfig, type GuardConfig, type Refusal } from './api/request-guard';
import { identify, readCredential } from './core/operator-access';
import type { LogLine } from './core/events';
import { OPEN_POOL_DEFAULTS } from './core/session-config';
import type { Aggregator, TrainingRepository } from './core/ports';
import { createCoordinator } from './services/create-coordinator';
import type { CoordinatorService } from './services/control';
import { DatasetRegistry } from '../ml/datasets/registry';
import { exportLayersModel } from '../ml/layers-export';
import { initialParams, MODEL_NAMES, modelSpec } from '../ml/models';
import { FRAME_HEADER_BYTES } from '../protocol/frame';
import { JoinTokens } from './services/join-tokens';
import type { HealthRegistry } from './services/health';
import { coordinatorHealth } from './health-probes';
import { createRequire } from 'node:module';
import { Settlement } from './services/settlement';
import { Wallets } from './services/wallets';
import { RewardsService } from './services/rewards';
import { DEFAULT_REWARD_POLICY, policyFromConfig, type RewardPolicy } from './core/rewards/policy';
import { setUpChain, type ChainOptions } from './chain-setup';
import type { SettlementChain } from './core/rewards/ports';

export interface RuntimeOptions {
  dataDir: string;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  aggregatorWorkers?: number;
  /** Datasets served by name (name -> folder); 'mnist' is built in. Their folders never leave this process. */
  datasets?: ReadonlyMap<string, string>;
  /** Per-update audit probability besides one audit per node per epoch (HYPERGPU_AUDIT_RATE; default AUDIT_RATE). */
  auditRate?: number;
  /** Nice value of the evaluator and auditor threads (HYPERGPU_BACKGROUND_NICE; default 0: unchanged). */
  backgroundNiceness?: number;
  /** Bytes of audit captures held in memory, then in scratch files (HYPERGPU_AUDIT_MEMORY_MB, HYPERGPU_AUDIT_SPILL_MB). */
  auditMemoryBytes?: number;
  auditSpillBytes?: number;
  /** Checkpoints kept per session (HYPERGPU_KEEP_CHECKPOINTS). */
  keepCheckpoints?: number;
  /** Largest frame a registered agent may send; default: the largest model frame (modelFrameBytes()). */
  maxFrameBytes?: number;
  /** Gateway limits besides the frame size (defaults: gatewayLimits in adapters/agent-gateway.ts). */
  gateway?: Partial<AgentGatewayOptions>;
  /** Admit agents without a join token (a trusted network only). */
  openPool?: boolean;
  /** Node rows never credited and not seen for this long are deleted at start (default 7 days; 0: never). */
  pruneIdleNodesAfterMs?: number;
  /** Serve HTTPS and wss:// on the same port with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  log: (line: LogLine) => void;
  /** Who may operate the coordinator and whom it answers (see "Security" in README.md). */
  security?: SecurityOptions;
  /** Where epochs settle (default: nowhere; `npm start` asks for a local anvil). */
  chain?: ChainOptions;
  /** What a sample pays when a session sets no policy of its own. */
  rewardPolicy?: RewardPolicy;
}

export interface SecurityOptions {
  /** HYPERGPU_ADMIN_TOKEN; absent: the token stored (hashed) in the data dir, created at first start. */
  adminToken?: string;
  /** --reset-admin-token: replace the stored token with a new one (printed once). */
  resetAdminToken?: boolean;
  /** HYPERGPU_PRIVATE_READS: reads need the operator credential too. */
  privateReads?: boolean;
  /** Host names this server answers to besides localhost and the bound address (--public-host, HYPERGPU_PUBLIC_HOSTS). */
  publicHosts?: string[];
  /** HYPERGPU_ALLOWED_ORIGINS: pages that may open WebSockets and POST here besides the server's own. */
  allowedOrigins?: string[];
}

/** Largest tRPC WebSocket message: a subscription request or a mutation is a few hundred bytes. */
export const TRPC_WS_MAX_PAYLOAD = 64 * 1024;
/** Live subscriptions one tRPC WebSocket may hold (the dashboard holds one). */
export const TRPC_WS_MAX_SUBSCRIPTIONS = 4;

/** The largest model frame this coordinator serves: header + 4 bytes per parameter of the biggest model. */
export function modelFrameBytes(): number {
  return Math.max(...MODEL_NAMES.map((model) => FRAME_HEADER_BYTES + modelSpec(model).paramCount * 4));
}

export interface Runtime {
  coordinator: CoordinatorService;
  repo: TrainingRepository;
  aggregator: Aggregator;
  gateway: AgentGateway;
  joinTokens: JoinTokens;
  /** Component health behind GET /health; other parts register theirs (the chain, settlement). */
  health: HealthRegistry;
  /** The settlement chain, null when running without one. */
  chain: SettlementChain | null;
  rewards: RewardsService;
  server: Server;
  /** The operator credential: main.ts prints a newly created admin token once. */
  operatorAuth: OperatorAuthHandle;
  /** Installs the handler for requests the runtime does not own (the Next.js pages). */
  setFallback(handler: ((req: IncomingMessage, res: ServerResponse) => void) | null): void;
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
}

/** This coordinator's version, from package.json (GET /health). */
const VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/** WebSocket paths this server owns. No Next page or route may use them (Next would close the socket). */
export const AGENT_PATH = '/agent';
export const TRPC_HTTP_PATH = '/trpc';
export const TRPC_WS_PATH = '/trpc-ws';

export async function createRuntime(options: RuntimeOptions): Promise<Runtime> {
  const dataDir = path.resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const startedAt = Date.now();
  const info = (message: string) => options.log({ at: Date.now(), level: 'info', message });
  // A dataset that fails to load is reported in full (its path included) on this terminal only; callers get the id.
  const datasets = new DatasetRegistry(options.datasets, (message) => options.log({ at: Date.now(), level: 'warn', message }));

  const repo = await createPrismaRepository(path.join(dataDir, 'hypergpu.db'), { log: info });
  const pruneAfter = options.pruneIdleNodesAfterMs ?? 7 * 24 * 3600 * 1000;
  if (pruneAfter > 0) {
    const pruned = await repo.pruneIdleNodes(Date.now() - pruneAfter);
    if (pruned > 0) info(`pruned ${pruned} node name(s) never credited and not seen for ${Math.round(pruneAfter / 3600_000)} h`);
  }
  const joinTokens = new JoinTokens(repo, cryptoCredentials, systemClock, options.openPool ?? false);
  if (joinTokens.openPool) {
    options.log({ at: Date.now(), level: 'warn', message: 'OPEN POOL: any agent that can reach this port may join and train without a join token (--open-pool / HYPERGPU_OPEN_POOL). Use it on a trusted network only.' });
    options.log({ at: Date.now(), level: 'info', message: 'open pool: sessions aggregate with a trimmed mean (0.2 at each end) and clip updates at 3x the median norm unless they ask for another rule' });
  }
  const checkpoints = createCheckpointStore(createFileBlobStore(path.join(dataDir, 'checkpoints')));
  // Each worker thread's own V8 heap, which the main thread cannot see, reported to /metrics.
  const workerMemory = new WorkerMemoryBoard();
  const aggregator = await createAggregatorPool({ workers: options.aggregatorWorkers, log: info, memoryBoard: workerMemory });
  info(`outer optimizer step: ${aggregator.backend === 'wasm-simd' ? 'WebAssembly SIMD kernel on the resident model (bit-identical to the JS reference), staged on an aggregator worker while each round is committed' : 'JS reference (core/optimizer.ts)'}`);
  const events = new EventBus();
  let chain: SettlementChain | null = null;
  try {
    chain = await setUpChain(options.chain ?? { mode: 'off' }, dataDir, info);
  } catch (error) {
    // Training never waits for the chain: without one, epochs are planned in the ledger and settle nowhere.
    options.log({ at: Date.now(), level: 'error', message: `settlement chain unavailable, training without it: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}` });
  }
  const defaultPolicy = options.rewardPolicy ?? DEFAULT_REWARD_POLICY;
  const settlement = new Settlement({
    repo,
    chain,
    clock: systemClock,
    policy: async (sessionId) => policyFromConfig((await repo.getSession(sessionId))?.config.rewards, defaultPolicy),
    log: (level, message) => options.log({ at: Date.now(), level, message }),
  });
  const { service: coordinator, channel, start } = await createCoordinator({
    consumers: [settlement],
    // The EIP-712 domain agents sign their hello in: this chain and contract, when there is one.
    wallets: new Wallets(repo, cryptoCredentials, systemClock, {
      coordinator: chain ? `hypergpu:${chain.info.chainId}:${chain.info.contractAddress.toLowerCase()}` : 'hypergpu:no-chain',
      chainId: chain?.info.chainId ?? 10143,
      verifyingContract: chain?.info.contractAddress ?? null,
    }),
    repo,
    checkpoints,
    journal: createUpdateJournal(createFileBlobStore(path.join(dataDir, 'journal'))),
    aggregator,
    // The outer optimizer's step in the WebAssembly SIMD kernel wherever the aggregator's kernels run (same bits
    // as the JS reference, so the choice never changes a model; see resident-optimizer.ts).
    // A round's step is staged on the aggregator's workers while the main thread writes its commit.
    optimizerKernels: aggregator.backend === 'wasm-simd' && aggregator.runOptimizerStep ? createWasmOptimizerKernels((job) => aggregator.runOptimizerStep!(job)) : null,
    createEvaluator: async (model, datasetId) => {
      try {
        return await createEvaluator({ model, dataset: datasets.source(datasetId), log: info, niceness: options.backgroundNiceness, memoryBoard: workerMemory });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        options.log({ at: Date.now(), level: 'warn', message: `evaluator for dataset '${datasetId}': ${message}` });
        throw new Error(datasets.redact(datasetId, message));
      }
    },
    models: {
      paramCount: (model) => modelSpec(model).paramCount,
      initialParams: (model, seed) => initialParams(modelSpec(model), seed),
      exportLayers: (model, params, options) => exportLayersModel(modelSpec(model), params, options),
    },
    datasets: { describe: (id) => datasets.describe(id), list: () => datasets.list() },
    clock: systemClock,
    credentials: cryptoCredentials,
    admission: joinTokens,
    // Strangers may join an open pool: its sessions aggregate with a robust rule unless told otherwise.
    ...(joinTokens.openPool ? { sessionDefaults: OPEN_POOL_DEFAULTS } : {}),
    audits: {
      store: repo,
      createAuditor: async (model, datasetId) => createAuditor({ model, dataset: datasets.source(datasetId), log: info, niceness: options.backgroundNiceness, memoryBoard: workerMemory }),
      // Which updates are audited must be unpredictable to nodes: the operating system's CSPRNG, 48 bits a draw.
      random: () => randomInt(0, 2 ** 48 - 1) / 2 ** 48,
      rate: options.auditRate,
      // Captures past the in-memory bound wait here (AUDIT_MEMORY_BYTES in core/audit.ts says why).
      spill: await createAuditSpill(path.join(dataDir, 'audit-spill')),
      limits: { memoryBytes: options.auditMemoryBytes, diskBytes: options.auditSpillBytes },
    },
    events,
    options: { heartbeatMs: options.heartbeatMs, heartbeatTimeoutMs: options.heartbeatTimeoutMs, historyLimit: 20_000, keepCheckpoints: options.keepCheckpoints },
    log: options.log,
  });
  await start();
  settlement.start();
  const rewards = new RewardsService(repo, chain, () => coordinator.status().sessionId);

  const timelines = new NodeTimelines(repo, rewards);
  const metricsExporter = createMetricsExporter(coordinator, { aggregation: () => aggregator.stats(), settlement: () => settlement.state(), workerMemory: () => workerMemory.snapshot() });
  const eventStream = createEventStream(coordinator);
  const gateway = createAgentGateway(channel, gatewayLimits(options.maxFrameBytes ?? modelFrameBytes(), options.gateway));
  const health = coordinatorHealth({ repo, aggregator, coordinator, gateway });
  // The chain is not needed to train (settlement retries), so it is reported but never makes /health a 503.
  health.register('chain', {
    required: false,
    check: async () => {
      const state = await settlement.state();
      return { status: state.chain === 'none' ? 'idle' : state.chain, detail: state.detail };
    },
  });
  // Extras every API call may use: component health, operator actions at the gateway, the version for /health.
  const extra = { health, version: VERSION, timelines, rewards, operations: { banAddress: (address: string, until: number, reason: string) => gateway.banAddress(address, until, reason) } };

  const security = options.security ?? {};
  const privateReads = security.privateReads ?? false;
  const operatorAuth = createOperatorAuth({ dataDir, envToken: security.adminToken, reset: security.resetAdminToken });
  const authRoutes = createAuthRoutes(operatorAuth, { privateReads, siwe: chain ? { owner: chain.info.owner, chainId: chain.info.chainId } : null });
  // The credential is read from the request (HTTP) or the upgrade request (WebSocket) and checked at every call.
  const callerOf = (req: IncomingMessage) => () => identify(readCredential(req.headers), operatorAuth);
  const trpcContext = ({ req }: { req: IncomingMessage }) => ({ control: coordinator, caller: callerOf(req), privateReads, joinTokens, ...extra });
  // GET queries skip tRPC's fetch Request/Response round trip (trpc-fast-read.ts); everything else is tRPC's.
  const trpcHttp = createFastQueryHandler({
    router: appRouter,
    basePath: `${TRPC_HTTP_PATH}/`,
    createContext: trpcContext,
    fallback: createHTTPHandler({ router: appRouter, createContext: trpcContext, basePath: `${TRPC_HTTP_PATH}/` }),
  });
  const trpcWss = new WebSocketServer({ noServer: true, maxPayload: TRPC_WS_MAX_PAYLOAD });
  const trpcWsHandler = applyWSSHandler({
    wss: trpcWss,
    router: appRouter,
    // One context per socket: the subscription count lives on it.
    createContext: ({ req }) => ({ control: coordinator, caller: callerOf(req), privateReads, joinTokens, ...extra, subscriptions: { live: 0, max: TRPC_WS_MAX_SUBSCRIPTIONS } }),
    keepAlive: { enabled: true, pingMs: 15_000, pongWaitMs: 5_000 },
  });
  // Replaced in listen(), once the bound address is known.
  let guard: GuardConfig = guardConfig({ boundHost: '127.0.0.1', publicHosts: security.publicHosts ?? [], allowedOrigins: security.allowedOrigins ?? [] });
  const refuseUpgrade = (socket: Duplex, refusal: Refusal) => {
    const body = JSON.stringify({ error: refusal });
    socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  };

  let fallback: ((req: IncomingMessage, res: ServerResponse) => void) | null = null;
  // With a certificate, the one port serves HTTPS and wss:// (the same handlers; TLS ends here).
  const makeServer = (handler: (req: IncomingMessage, res: ServerResponse) => void): Server =>
    options.tls ? (createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler) as unknown as Server) : createServer(handler);
  const server = makeServer((req, res) => {
    const url = req.url ?? '/';
    // Host for everything (Next's pages too); Origin and JSON bodies for requests that change something.
    const unsafe = req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'OPTIONS';
    const refusal = checkHost(req.headers.host, guard) ?? (unsafe ? (checkOrigin(req.headers.origin, req.headers.host, guard) ?? checkPostBody(req.method, req.headers)) : null);
    if (refusal) return sendError(res, new RestError(refusal.code, refusal.message));
    if (url === TRPC_HTTP_PATH || url.startsWith(`${TRPC_HTTP_PATH}/`) || url.startsWith(`${TRPC_HTTP_PATH}?`)) {
      trpcHttp(req, res);
      return;
    }
    if (url.split('?')[0] === METRICS_PATH) return void serveMetrics(req, res, metricsExporter, callerOf(req)(), privateReads);
    authRoutes
      .handle(req, res)
      .then((handled) => handled || handleRest(req, res, coordinator, startedAt, { caller: callerOf(req), privateReads }, joinTokens, extra))
      .then((handled) => {
        if (handled) return;
        if (fallback) return fallback(req, res);
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: `no page ${url} (the dashboard is off in headless mode)` } }));
      })
      .catch((error) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) } }));
      });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    // Before the handshake: a page on another site never gets a socket to us (agents send no Origin).
    const refusal = checkHost(req.headers.host, guard) ?? checkOrigin(req.headers.origin, req.headers.host, guard);
    if (refusal) return refuseUpgrade(socket, refusal);
    if (pathname === AGENT_PATH) return gateway.handleUpgrade(req, socket, head);
    if (pathname === EVENTS_WS_PATH) return eventStream.handleUpgrade(req, socket, head, callerOf(req)(), privateReads);
    if (pathname === TRPC_WS_PATH) {
      trpcWss.handleUpgrade(req, socket, head, (ws) => trpcWss.emit('connection', ws, req));
      return;
    }
    // Anything else belongs to Next (its dev server serves hot reload through its own upgrade listener).
    if (!fallback) socket.destroy();
  });

  return {
    coordinator,
    health,
    repo,
    aggregator,
    gateway,
    joinTokens,
    chain,
    rewards,
    server,
    operatorAuth,
    setFallback(handler) {
      fallback = handler;
    },
    listen(port, host) {
      guard = guardConfig({ boundHost: host, publicHosts: security.publicHosts ?? [], allowedOrigins: security.allowedOrigins ?? [] });
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address();
          resolve(typeof address === 'object' && address ? address.port : port);
        });
      });
    },
    async close() {
      await coordinator.shutdown();
      await settlement.close();
      metricsExporter.close();
      eventStream.close();
      trpcWsHandler.broadcastReconnectNotification();
      for (const client of trpcWss.clients) client.terminate();
      trpcWss.close();
      await gateway.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await aggregator.close();
      await repo.close();
    },
  };
}
