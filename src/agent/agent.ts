// The node agent: connects to a coordinator, trains on the shards it is assigned, sends gradients as binary
// frames, heartbeats, and reconnects with backoff whenever the connection drops. This file composes the
// pieces: connection.ts (link, backoff, heartbeats, token, validation of what arrives) on this, the main thread;
// training-thread.ts (a worker_thread running session.ts and training-loop.ts: tfjs, the dataset, the rounds), so
// no training step can delay a heartbeat; progress.ts (the periodic log line).
import os from 'node:os';
import type { BackendInfo, BackendName } from '../ml/backend';
import type { SessionDescriptor } from '../protocol/messages';
import { AgentConnection, type ControlMessage } from './connection';
import type { Simulation } from './simulation';
import { ProgressMeter } from './progress';
import { TokenStore } from './token-store';
import { TrainingThread } from './training-thread';
import type { NodeWallet } from './wallet';

export const AGENT_VERSION = '0.1.0';

export interface AgentOptions {
  coordinator: string;
  name: string;
  /** Backend to start the search at (see loadTf); undefined: the fastest that loads. */
  backend?: BackendName;
  /** Datasets configured on this machine, name -> folder ('mnist' is built in). Only these ids are trained. */
  datasets?: ReadonlyMap<string, string>;
  log: (line: string) => void;
  /** Backoff between reconnect attempts: starts here, doubles, capped at maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Largest micro-batch per forward/backward pass; the training thread takes control messages between them. */
  microBatch?: number;
  /** Simulated heterogeneity or misbehaviour (simulation.ts): local demos and tests only. */
  simulate?: Simulation;
  /** Drop the connection when nothing (not even a pong) came from the coordinator for this long. */
  coordinatorTimeoutMs?: number;
  /** Called when the agent cannot go on (e.g. its name belongs to another agent). */
  onFatal?: (reason: string) => void;
  /** Where this agent keeps the secret that makes its name its own (null: memory only). */
  tokenFile?: string | null;
  /** Operator-issued join token, presented in the hello while this name has no node secret yet. */
  joinToken?: string;
  /** PEM CA certificate(s) that verify a wss:// coordinator (a self-signed one); default: the system's roots. */
  ca?: string | Buffer;
  /** The node's wallet (wallet.ts); absent: it joins without one and is paid nothing. */
  wallet?: NodeWallet;
  /** How often the progress line is logged (10 s). */
  progressEveryMs?: number;
}

export class NodeAgent {
  private readonly connection: AgentConnection;
  private readonly training: TrainingThread;
  private readonly progress = new ProgressMeter();
  private progressTimer: NodeJS.Timeout | null = null;
  private backendInfo: BackendInfo | null = null;
  private sessionId: number | null = null;

  constructor(private readonly options: AgentOptions) {
    const { log } = options;
    this.training = new TrainingThread({
      prefer: options.backend,
      datasets: options.datasets ?? new Map(),
      microBatch: options.microBatch,
      simulate: options.simulate,
      log,
      onReady: (sessionId) => this.ready(sessionId),
      onUpdate: (bytes, round) => {
        // Computed for another link's node id (or none is registered now): drop it, as the round will be reassigned.
        const nodeId = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(16, true);
        if (this.connection.nodeId !== nodeId) return;
        if (!this.connection.sendFrame(bytes)) log(`update for round ${round} not sent: not connected`);
      },
      onRound: (r) => {
        const endedAt = performance.now();
        this.progress.recordRound({ startedAt: endedAt - r.durationMs, endedAt, computeMs: r.computeMs, samples: r.samples, loss: r.loss });
      },
      onExit: (reason) => options.onFatal?.(reason),
    });
    this.connection = new AgentConnection(
      {
        url: options.coordinator,
        name: options.name,
        log,
        tokens: new TokenStore(options.tokenFile ?? null, log),
        joinToken: options.joinToken,
        ca: options.ca,
        pongDelayMs: options.simulate?.latencyMs,
        wallet: options.wallet,
        capabilities: () => ({
          backend: this.backendInfo?.name ?? 'unknown',
          device: this.backendInfo?.device ?? 'unknown',
          samplesPerSecond: this.training.samplesPerSecond,
          agentVersion: AGENT_VERSION,
          hostname: os.hostname(),
        }),
        currentRound: () => this.training.currentRound,
        computeShare: () => this.progress.utilisation().recent,
        minBackoffMs: options.minBackoffMs,
        maxBackoffMs: options.maxBackoffMs,
        coordinatorTimeoutMs: options.coordinatorTimeoutMs,
      },
      {
        onWelcome: (welcome) => {
          this.training.setNode(welcome.nodeId);
          this.joinSession(welcome.session);
        },
        onControl: (message) => this.onControl(message),
        onModelFrame: (frame) => this.training.onModelFrame(frame),
      },
    );
  }

  /** Starts the training thread (tfjs loads there); resolves with the backend it chose. */
  async init(): Promise<BackendInfo> {
    this.backendInfo ??= await this.training.start();
    return this.backendInfo;
  }

  /** Measures this machine's speed on the default model, so the first registration reports something real. */
  async calibrate(datasetId = 'mnist', model: 'mlp' | 'cnn' | 'mlp2nn' = 'mlp'): Promise<number> {
    await this.init();
    return this.training.calibrate(datasetId, model);
  }

  start(): void {
    // Utilisation counts from here: calibration and start-up are not idle time.
    this.progress.restart();
    this.connection.start();
    this.progressTimer = setInterval(() => {
      const line = this.progress.takeLine();
      if (line) this.options.log(line);
    }, this.options.progressEveryMs ?? 10_000);
    this.progressTimer.unref();
  }

  async stop(reason = 'agent stopping'): Promise<void> {
    if (this.progressTimer) clearInterval(this.progressTimer);
    await this.connection.stop(reason);
    await this.training.stop();
  }

  private joinSession(session: SessionDescriptor | null): void {
    if ((session?.sessionId ?? null) !== this.sessionId) this.progress.startWindow();
    this.sessionId = session?.sessionId ?? null;
    this.training.join(session);
  }

  private ready(sessionId: number): void {
    this.connection.send({ v: 1, type: 'ready', sessionId });
  }

  private onControl(message: ControlMessage): void {
    switch (message.type) {
      case 'session':
        this.joinSession(message.session);
        return;
      case 'assignment':
        this.training.assign(message.assignment);
        return;
      case 'cancel':
        this.training.cancel(message.round);
        return;
      case 'accepted':
        if (message.clippedTo !== undefined) this.progress.recordClipped();
        return;
      case 'rejected':
        this.progress.recordRejected();
        this.options.log(`update for round ${message.round} rejected: ${message.code}: ${message.reason}`);
        return;
      case 'error':
        this.options.log(`coordinator reported ${message.code}: ${message.message}`);
        if (message.code === 'NAME_TAKEN' || message.code === 'JOIN_TOKEN_REQUIRED' || message.code === 'JOIN_TOKEN_INVALID' || message.code === 'WALLET_MISMATCH' || message.code === 'WALLET_SIGNATURE_INVALID') {
          // Retrying cannot help: someone else owns this name, or the operator has not admitted this agent.
          // Stop instead of hammering the coordinator (its gateway counts refusals against the address).
          this.options.onFatal?.(message.message);
        }
        return;
    }
  }
}
