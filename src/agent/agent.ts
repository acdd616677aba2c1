// The node agent: connects to a coordinator, trains on the shards it is assigned, sends gradients as binary
// frames, heartbeats, and reconnects with backoff whenever the connection drops.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import type { Assignment } from '../server/core/types';
import type { CoordinatorMessage, SessionDescriptor } from '../server/core/agent-protocol';
import { decodeFrame, encodeFrame, FrameKind } from '../protocol/frame';
import { epochPermutation } from '../server/core/shards';
import type { BackendInfo, Tf } from '../ml/backend';
import { loadDataset, type Dataset } from '../ml/datasets';
import { assertDatasetFitsModel, modelSpec, type ModelSpec } from '../ml/models';
import { Trainer } from '../ml/trainer';

export const AGENT_VERSION = '0.1.0';

export interface AgentOptions {
  coordinator: string;
  name: string;
  /** The tfjs handle and backend chosen by loadTf. */
  tf: Tf;
  backend: BackendInfo;
  log: (line: string) => void;
  /** Backoff between reconnect attempts: starts here, doubles, capped at maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Largest micro-batch per forward/backward pass; the agent yields to its event loop between them. */
  microBatch?: number;
  /** Drop the connection when nothing (not even a pong) came from the coordinator for this long. */
  coordinatorTimeoutMs?: number;
  /** Called when the agent cannot go on (e.g. its name belongs to another agent). */
  onFatal?: (reason: string) => void;
  /** Where this agent keeps the secret that makes its name its own (null: memory only). */
  tokenFile?: string | null;
}

interface Prepared {
  session: SessionDescriptor;
  dataset: Dataset;
  spec: ModelSpec;
  trainer: Trainer;
}

export class NodeAgent {
  private socket: WebSocket | null = null;
  private nodeId: number | null = null;
  private heartbeatMs = 1000;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private lastHeardAt = 0;
  private readonly coordinatorTimeoutMs: number;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private backoffMs: number;
  private stopped = false;
  private prepared: Prepared | null = null;
  private preparing: Promise<Prepared | null> | null = null;
  private params: { version: number; round: number; values: Float32Array } | null = null;
  private cancelledRound: number | null = null;
  private currentRound: number | null = null;
  private permutation: { seed: number; epoch: number; n: number; perm: Uint32Array } | null = null;
  private samplesPerSecond = 0;
  private readonly datasets = new Map<string, Promise<Dataset>>();
  private work: Promise<void> = Promise.resolve();
  private stats = { rounds: 0, samples: 0, rejected: 0, since: Date.now(), lastLoss: Number.NaN };
  private statsTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: AgentOptions) {
    this.backoffMs = options.minBackoffMs ?? 250;
    this.coordinatorTimeoutMs = options.coordinatorTimeoutMs ?? 3000;
  }

  /** Measures this machine's speed on the default model, so the first registration reports something real. */
  async calibrate(datasetId = 'mnist', model: 'mlp' | 'cnn' = 'mlp'): Promise<number> {
    const dataset = await this.dataset(datasetId);
    const trainer = new Trainer(this.options.tf, modelSpec(model));
    try {
      this.samplesPerSecond = trainer.benchmark(dataset, 256);
    } finally {
      trainer.dispose();
    }
    return this.samplesPerSecond;
  }

  start(): void {
    this.stopped = false;
    this.connect();
    this.statsTimer = setInterval(() => this.reportProgress(), 10_000);
    this.statsTimer.unref();
  }

  async stop(reason = 'agent stopping'): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.stopHeartbeat();
    const socket = this.socket;
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ v: 1, type: 'goodbye', reason }));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.close(1000, reason);
      });
    }
    this.prepared?.trainer.dispose();
  }

  private connect(): void {
    if (this.stopped) return;
    const socket = new WebSocket(this.options.coordinator, { perMessageDeflate: false, maxPayload: 512 * 1024 * 1024, handshakeTimeout: 5000 });
    this.socket = socket;
    socket.binaryType = 'nodebuffer';
    socket.on('open', () => {
      this.backoffMs = this.options.minBackoffMs ?? 250;
      this.send({
        v: 1,
        type: 'hello',
        name: this.options.name,
        ...(this.token() ? { token: this.token() } : {}),
        capabilities: {
          backend: this.options.backend.name,
          device: this.options.backend.device,
          samplesPerSecond: this.samplesPerSecond,
          agentVersion: AGENT_VERSION,
          hostname: os.hostname(),
        },
      });
    });
    socket.on('pong', () => (this.lastHeardAt = Date.now()));
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      this.lastHeardAt = Date.now();
      if (isBinary) this.onModelFrame(data);
      else this.onControl(data.toString('utf8'));
    });
    let lastError: string | null = null;
    socket.on('close', (code: number, reason: Buffer) => {
      this.stopHeartbeat();
      this.nodeId = null;
      if (this.socket === socket) this.socket = null;
      if (this.stopped) return;
      // Jitter so that many agents cut off at once do not all come back in the same millisecond.
      const delay = Math.round(this.backoffMs * (0.75 + Math.random() * 0.5));
      const why = lastError ?? `code ${code}${reason.length ? `: ${reason.toString()}` : ''}`;
      this.options.log(`${lastError ? 'cannot reach coordinator' : 'disconnected'} (${why}); reconnecting in ${delay} ms`);
      this.backoffMs = Math.min(this.backoffMs * 2, this.options.maxBackoffMs ?? 10_000);
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    });
    socket.on('error', (error: Error) => {
      // 'close' follows, reports it and schedules the reconnect.
      lastError = error.message;
    });
  }

  private cachedToken: string | null | undefined;

  private token(): string | null {
    if (this.cachedToken === undefined) {
      const file = this.options.tokenFile;
      try {
        this.cachedToken = file ? readFileSync(file, 'utf8').trim() || null : null;
      } catch {
        this.cachedToken = null;
      }
    }
    return this.cachedToken;
  }

  /** Written atomically and private to the user: whoever holds it can act as this node. */
  private saveToken(token: string): void {
    this.cachedToken = token;
    const file = this.options.tokenFile;
    if (!file) return;
    try {
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      writeFileSync(`${file}.tmp`, `${token}\n`, { mode: 0o600 });
      renameSync(`${file}.tmp`, file);
      this.options.log(`saved this node's token to ${file}`);
    } catch (error) {
      this.options.log(`could not save the node token to ${file}: ${error instanceof Error ? error.message : String(error)}; the name is held only while this process runs`);
    }
  }

  private send(message: object): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  private onControl(text: string): void {
    let message: CoordinatorMessage;
    try {
      message = JSON.parse(text) as CoordinatorMessage;
    } catch {
      this.options.log('coordinator sent a text frame that is not JSON; ignored');
      return;
    }
    switch (message.type) {
      case 'welcome':
        if (message.token) this.saveToken(message.token);
        this.nodeId = message.nodeId;
        this.heartbeatMs = message.heartbeatMs;
        this.startHeartbeat();
        this.options.log(`registered as node #${message.nodeId} with ${this.options.coordinator}`);
        this.onSession(message.session);
        return;
      case 'session':
        this.onSession(message.session);
        return;
      case 'assignment':
        this.work = this.work.then(() => this.train(message.assignment)).catch((error) => this.options.log(`training failed: ${error instanceof Error ? error.stack : String(error)}`));
        return;
      case 'cancel':
        this.cancelledRound = message.round;
        return;
      case 'accepted':
        return;
      case 'rejected':
        this.stats.rejected += 1;
        this.options.log(`update for round ${message.round} rejected: ${message.code}: ${message.reason}`);
        return;
      case 'error':
        this.options.log(`coordinator reported ${message.code}: ${message.message}`);
        if (message.code === 'NAME_TAKEN') {
          // Retrying cannot help: someone else owns this name. Stop instead of hammering the coordinator.
          this.options.onFatal?.(message.message);
        }
        return;
    }
  }

  private onSession(session: SessionDescriptor | null): void {
    if (!session) return;
    const preparing = this.prepare(session);
    this.preparing = preparing;
    preparing
      .then((prepared) => {
        if (prepared && this.preparing === preparing) this.send({ v: 1, type: 'ready', sessionId: session.sessionId });
      })
      .catch((error) => this.options.log(`cannot join session ${session.sessionId}: ${error instanceof Error ? error.message : String(error)}`));
  }

  private async prepare(session: SessionDescriptor): Promise<Prepared | null> {
    const current = this.prepared;
    if (current && current.session.model === session.model && current.session.dataset === session.dataset) {
      this.prepared = { ...current, session };
      return this.prepared;
    }
    const dataset = await this.dataset(session.dataset);
    const spec = modelSpec(session.model);
    if (spec.paramCount !== session.paramCount) {
      throw new Error(`model ${session.model} has ${spec.paramCount} parameters here but ${session.paramCount} at the coordinator: agent and coordinator versions differ`);
    }
    assertDatasetFitsModel(spec, dataset);
    current?.trainer.dispose();
    this.prepared = { session, dataset, spec, trainer: new Trainer(this.options.tf, spec) };
    this.options.log(`ready for session ${session.sessionId}: ${session.model} (${spec.paramCount.toLocaleString('en-US')} parameters) on ${session.dataset} (${dataset.trainSize.toLocaleString('en-US')} training samples)`);
    return this.prepared;
  }

  private dataset(id: string): Promise<Dataset> {
    let pending = this.datasets.get(id);
    if (!pending) {
      pending = loadDataset(id);
      this.datasets.set(id, pending);
      pending.catch(() => this.datasets.delete(id));
    }
    return pending;
  }

  private onModelFrame(data: Buffer): void {
    try {
      const { header, payload } = decodeFrame(data);
      if (header.kind !== FrameKind.Model) throw new Error(`expected a model frame, got kind ${header.kind}`);
      // The payload may be a view over ws's receive buffer; keep our own copy since training outlives it.
      this.params = { version: header.modelVersion, round: header.round, values: payload.byteOffset % 4 === 0 ? payload.slice() : payload };
    } catch (error) {
      this.options.log(`bad model frame from coordinator: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private async train(assignment: Assignment): Promise<void> {
    const prepared = this.prepared;
    if (!prepared || prepared.session.sessionId !== assignment.sessionId) {
      this.options.log(`assignment for session ${assignment.sessionId} but prepared for ${prepared?.session.sessionId ?? 'none'}; skipped`);
      return;
    }
    const params = this.params;
    if (!params || params.version !== assignment.modelVersion) {
      this.options.log(`assignment for model version ${assignment.modelVersion} but holding ${params?.version ?? 'none'}; skipped`);
      return;
    }
    this.currentRound = assignment.round;
    const started = performance.now();
    const { dataset, trainer } = prepared;
    const indices = this.shardIndices(prepared.session.seed, assignment, dataset.trainSize);
    trainer.setParams(params.values);
    // Micro-batches bound how long the event loop is blocked between heartbeats: 128 MLP samples take ~20 ms
    // on one wasm core, far inside the 800 ms timeout, while smaller ones cost throughput (~10% at 64).
    const microBatch = Math.max(1, this.options.microBatch ?? 128);
    const inputSize = dataset.inputShape.reduce((a, b) => a * b, 1);
    const gradient = new Float32Array(prepared.spec.paramCount);
    let lossSum = 0;
    for (let offset = 0; offset < indices.length; offset += microBatch) {
      if (this.cancelledRound === assignment.round) return;
      const count = Math.min(microBatch, indices.length - offset);
      const x = new Float32Array(count * inputSize);
      const y = new Int32Array(count);
      dataset.fillTrainBatch(indices.subarray(offset, offset + count), x, y);
      const result = trainer.computeGradient(x, y, count, microBatch);
      const weight = count / indices.length;
      const g = result.gradient;
      for (let i = 0; i < gradient.length; i++) gradient[i] += g[i] * weight;
      lossSum += result.loss * count;
      // Let heartbeats and control messages through between micro-batches.
      if (offset + count < indices.length) await new Promise((resolve) => setImmediate(resolve));
    }
    if (this.cancelledRound === assignment.round || this.nodeId !== assignment.nodeId) return;
    const loss = lossSum / indices.length;
    const frame = encodeFrame(
      {
        kind: FrameKind.Gradient,
        sessionId: assignment.sessionId,
        round: assignment.round,
        nodeId: assignment.nodeId,
        attempt: assignment.attempt,
        modelVersion: assignment.modelVersion,
        sampleCount: indices.length,
        trainLoss: loss,
      },
      gradient,
    );
    this.socket?.send(frame, { binary: true });
    this.currentRound = null;
    this.stats.rounds += 1;
    this.stats.samples += indices.length;
    this.stats.lastLoss = loss;
    const seconds = (performance.now() - started) / 1000;
    if (seconds > 0) this.samplesPerSecond = 0.8 * (this.samplesPerSecond || indices.length / seconds) + 0.2 * (indices.length / seconds);
  }

  private shardIndices(seed: number, a: Assignment, trainSize: number): Uint32Array {
    const cached = this.permutation;
    if (!cached || cached.seed !== seed || cached.epoch !== a.epoch || cached.n !== trainSize) {
      this.permutation = { seed, epoch: a.epoch, n: trainSize, perm: epochPermutation(seed, a.epoch, trainSize) };
    }
    return this.permutation!.perm.subarray(a.shardStart, Math.min(trainSize, a.shardStart + a.shardCount));
  }

  /**
   * Heartbeats tell the coordinator this node is alive; pings tell this node the coordinator is. A link that
   * goes silent without closing (a partition, a black hole) is cut here so the reconnect loop takes over.
   */
  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.lastHeardAt = Date.now();
    this.heartbeatTimer = setInterval(() => {
      const socket = this.socket;
      if (!socket || socket.readyState !== WebSocket.OPEN) return;
      const silentFor = Date.now() - this.lastHeardAt;
      if (silentFor > this.coordinatorTimeoutMs) {
        this.options.log(`coordinator silent for ${silentFor} ms; dropping the connection`);
        socket.terminate();
        return;
      }
      this.send({ v: 1, type: 'heartbeat', at: Date.now(), round: this.currentRound });
      socket.ping();
    }, this.heartbeatMs);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private reportProgress(): void {
    const seconds = (Date.now() - this.stats.since) / 1000;
    if (this.stats.rounds === 0) return;
    this.options.log(
      `${this.stats.rounds} rounds, ${this.stats.samples} samples in ${seconds.toFixed(0)} s (${Math.round(this.stats.samples / seconds)} samples/s), last loss ${this.stats.lastLoss.toFixed(4)}` +
        (this.stats.rejected ? `, ${this.stats.rejected} rejected` : ''),
    );
    this.stats = { rounds: 0, samples: 0, rejected: 0, since: Date.now(), lastLoss: this.stats.lastLoss };
  }
}
