// Composition root: the one place that builds adapters and services and wires them together.
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { applyWSSHandler } from '@trpc/server/adapters/ws';
import { createAgentGateway, type AgentGateway } from './adapters/agent-gateway';
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
import { initialParams, modelSpec } from '../ml/models';

export interface RuntimeOptions {
  dataDir: string;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  aggregatorWorkers?: number;
  maxFrameBytes: number;
  /** Checkpoints kept per session (HYPERGPU_KEEP_CHECKPOINTS). */
  keepCheckpoints?: number;
  log: (line: LogLine) => void;
}

export interface Runtime {
  coordinator: CoordinatorService;
  repo: TrainingRepository;
  aggregator: Aggregator;
  gateway: AgentGateway;
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
    events,
    options: { heartbeatMs: options.heartbeatMs, heartbeatTimeoutMs: options.heartbeatTimeoutMs, historyLimit: 20_000, keepCheckpoints: options.keepCheckpoints },
    log: options.log,
  });
  await start();

  const gateway = createAgentGateway(channel, {
    maxFrameBytes: options.maxFrameBytes,
    maxMessagesPerSecond: 500,
  });

  const createContext = () => ({ control: coordinator });
  const trpcHttp = createHTTPHandler({
    router: appRouter,
    createContext,
    basePath: `${TRPC_HTTP_PATH}/`,
  });
  const trpcWss = new WebSocketServer({ noServer: true });
  const trpcWsHandler = applyWSSHandler({ wss: trpcWss, router: appRouter, createContext, keepAlive: { enabled: true, pingMs: 15_000, pongWaitMs: 5_000 } });

  let fallback: ((req: IncomingMessage, res: ServerResponse) => void) | null = null;
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === TRPC_HTTP_PATH || url.startsWith(`${TRPC_HTTP_PATH}/`) || url.startsWith(`${TRPC_HTTP_PATH}?`)) {
      trpcHttp(req, res);
      return;
    }
    handleRest(req, res, coordinator, startedAt)
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
