// Composition root: the one place that builds adapters and services and wires them together.
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import { createAgentGateway, gatewayLimits, type AgentGateway, type AgentGatewayOptions } from './adapters/agent-gateway';
import { createAggregatorPool } from './adapters/workers/aggregator-pool';
import { createFileBlobStore } from './adapters/blob-store';
import { createCheckpointStore } from './adapters/checkpoint-store';
import { createUpdateJournal } from './adapters/journal/update-journal';
import { createPrismaRepository } from './adapters/db/prisma-repository';
import { createEvaluator } from './adapters/workers/evaluator';
import { EventBus } from './adapters/event-bus';
import { systemClock } from './adapters/clock';
import { cryptoCredentials } from './adapters/credentials';
import { appRouter } from './api/root';
import { handleRest } from './api/rest';
import type { LogLine } from './core/events';
import type { Aggregator, TrainingRepository } from './core/ports';
import { createCoordinator } from './services/create-coordinator';
import type { CoordinatorService } from './services/control';
import { describeDataset } from '../ml/datasets';
import { initialParams, MODEL_NAMES, modelSpec } from '../ml/models';
import { FRAME_HEADER_BYTES } from '../protocol/frame';
import { JoinTokens } from './services/join-tokens';

export interface RuntimeOptions {
  dataDir: string;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  aggregatorWorkers?: number;
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
}

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
  server: Server;
  /** Installs the handler for requests the runtime does not own (the Next.js pages). */
  setFallback(handler: ((req: IncomingMessage, res: ServerResponse) => void) | null): void;
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
}

/** WebSocket paths this server owns. No Next page or route may use them (Next would close the socket). */
export const AGENT_PATH = '/agent';
export const TRPC_HTTP_PATH = '/trpc';
export const TRPC_WS_PATH = '/trpc-ws';

export async function createRuntime(options: RuntimeOptions): Promise<Runtime> {
  const dataDir = path.resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const startedAt = Date.now();
  const info = (message: string) => options.log({ at: Date.now(), level: 'info', message });

  const repo = await createPrismaRepository(path.join(dataDir, 'hypergpu.db'), { log: info });
  const pruneAfter = options.pruneIdleNodesAfterMs ?? 7 * 24 * 3600 * 1000;
  if (pruneAfter > 0) {
    const pruned = await repo.pruneIdleNodes(Date.now() - pruneAfter);
    if (pruned > 0) info(`pruned ${pruned} node name(s) never credited and not seen for ${Math.round(pruneAfter / 3600_000)} h`);
  }
  const joinTokens = new JoinTokens(repo, cryptoCredentials, systemClock, options.openPool ?? false);
  if (joinTokens.openPool) {
    options.log({ at: Date.now(), level: 'warn', message: 'OPEN POOL: any agent that can reach this port may join and train without a join token (--open-pool / HYPERGPU_OPEN_POOL). Use it on a trusted network only.' });
  }
  const checkpoints = createCheckpointStore(createFileBlobStore(path.join(dataDir, 'checkpoints')));
  const aggregator = await createAggregatorPool({ workers: options.aggregatorWorkers, log: info });
  const events = new EventBus();
  const { service: coordinator, channel, start } = await createCoordinator({
    repo,
    checkpoints,
    journal: createUpdateJournal(createFileBlobStore(path.join(dataDir, 'journal'))),
    aggregator,
    createEvaluator: (model, datasetId) => createEvaluator({ model, dataset: datasetId, log: info }),
    models: {
      paramCount: (model) => modelSpec(model).paramCount,
      initialParams: (model, seed) => initialParams(modelSpec(model), seed),
    },
    datasets: { describe: describeDataset },
    clock: systemClock,
    credentials: cryptoCredentials,
    admission: joinTokens,
    events,
    options: { heartbeatMs: options.heartbeatMs, heartbeatTimeoutMs: options.heartbeatTimeoutMs, historyLimit: 20_000 },
    log: options.log,
  });
  await start();

  const gateway = createAgentGateway(channel, gatewayLimits(options.maxFrameBytes ?? modelFrameBytes(), options.gateway));

  const createContext = () => ({ control: coordinator, joinTokens });
  const trpcHttp = createHTTPHandler({
    router: appRouter,
    createContext,
    basePath: `${TRPC_HTTP_PATH}/`,
  });
  const trpcWss = new WebSocketServer({ noServer: true });
  const trpcWsHandler = applyWSSHandler({ wss: trpcWss, router: appRouter, createContext, keepAlive: { enabled: true, pingMs: 15_000, pongWaitMs: 5_000 } });

  let fallback: ((req: IncomingMessage, res: ServerResponse) => void) | null = null;
  // With a certificate, the one port serves HTTPS and wss:// (the same handlers; TLS ends here).
  const makeServer = (handler: (req: IncomingMessage, res: ServerResponse) => void): Server =>
    options.tls ? (createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler) as unknown as Server) : createServer(handler);
  const server = makeServer((req, res) => {
    const url = req.url ?? '/';
    if (url === TRPC_HTTP_PATH || url.startsWith(`${TRPC_HTTP_PATH}/`) || url.startsWith(`${TRPC_HTTP_PATH}?`)) {
      trpcHttp(req, res);
      return;
    }
    handleRest(req, res, coordinator, startedAt, joinTokens)
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
    if (pathname === AGENT_PATH) return gateway.handleUpgrade(req, socket, head);
    if (pathname === TRPC_WS_PATH) {
      trpcWss.handleUpgrade(req, socket, head, (ws) => trpcWss.emit('connection', ws, req));
      return;
    }
    // Anything else belongs to Next (its dev server serves hot reload through its own upgrade listener).
    if (!fallback) socket.destroy();
  });

  return {
    coordinator,
    repo,
    aggregator,
    gateway,
    joinTokens,
    server,
    setFallback(handler) {
      fallback = handler;
    },
    listen(port, host) {
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
