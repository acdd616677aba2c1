// Lightweight simulated agents: many in one process, each a real WebSocket speaking the real agent protocol
// (hello -> welcome -> ready(sessionId) -> model frame + assignment -> gradient frame; heartbeats), with
// real-size updates, but no training: an update is sent as soon as the assignment arrives. The update's
// bytes are encoded once per agent (encodeFrame: the product codec); each round only the header fields that
// change are rewritten (the checksum covers the payload only, which stays the same).
import WebSocket from 'ws';
import { encodeFrame, FRAME_HEADER_BYTES, FrameKind } from '../../src/protocol/frame';
import type { CoordinatorMessage } from '../../src/server/core/agent-protocol';

export interface SimAgentStats {
  rounds: number;
  accepted: number;
  rejected: number;
  lastRejection: string | null;
  closes: number;
}

export class SimAgent {
  private socket: WebSocket | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private frame: Uint8Array | null = null;
  private modelVersion = -1;
  nodeId: number | null = null;
  readonly stats: SimAgentStats = { rounds: 0, accepted: 0, rejected: 0, lastRejection: null, closes: 0 };
  private welcomed: Promise<void>;
  private resolveWelcome!: () => void;
  private closed = false;

  constructor(
    private readonly url: string,
    readonly name: string,
    private readonly heartbeatMs = 200,
    /** Presented in the hello: a coordinator whose pool is not open admits new names only with one. */
    private readonly joinToken?: string,
    /** The update it sends every round (default: small gradient-sized values); a Byzantine agent sends its own. */
    private readonly payloadOf?: (paramCount: number) => Float32Array,
  ) {
    this.welcomed = new Promise((resolve) => (this.resolveWelcome = resolve));
  }

  /** Connects and registers; resolves once the coordinator has welcomed this node. */
  async connect(): Promise<void> {
    const socket = new WebSocket(this.url, { perMessageDeflate: false, maxPayload: 512 * 1024 * 1024 });
    socket.binaryType = 'nodebuffer';
    this.socket = socket;
    socket.on('message', (data: Buffer, isBinary: boolean) => (isBinary ? this.onModel(data) : this.onControl(data.toString('utf8'))));
    socket.on('close', () => {
      this.stats.closes += 1;
      this.stopHeartbeat();
    });
    socket.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    socket.send(
      JSON.stringify({
        v: 1,
        type: 'hello',
        name: this.name,
        ...(this.joinToken ? { joinToken: this.joinToken } : {}),
        capabilities: { backend: 'simulated', device: 'bench/lib/sim-agent.ts', samplesPerSecond: 1e6, agentVersion: 'bench', hostname: 'bench' },
      }),
    );
    await this.welcomed;
  }

  private send(message: object): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  private onModel(data: Buffer): void {
    // The header is enough: the version the next update must be computed against.
    if (data.byteLength >= FRAME_HEADER_BYTES) this.modelVersion = data.readUInt32LE(24);
  }

  private onControl(text: string): void {
    const message = JSON.parse(text) as CoordinatorMessage;
    switch (message.type) {
      case 'welcome':
        this.nodeId = message.nodeId;
        this.startHeartbeat(message.heartbeatMs);
        if (message.session) this.ready(message.session.sessionId, message.session.paramCount);
        this.resolveWelcome();
        return;
      case 'session':
        if (message.session) this.ready(message.session.sessionId, message.session.paramCount);
        return;
      case 'assignment': {
        const a = message.assignment;
        const frame = this.frame;
        if (!frame || this.socket?.readyState !== WebSocket.OPEN) return;
        const header = new DataView(frame.buffer, frame.byteOffset, FRAME_HEADER_BYTES);
        header.setUint32(8, a.sessionId, true);
        header.setUint32(12, a.round, true);
        header.setUint32(16, a.nodeId, true);
        header.setUint32(20, a.attempt, true);
        header.setUint32(24, a.modelVersion, true);
        header.setUint32(28, a.shardCount, true);
        this.socket.send(frame, { binary: true });
        this.stats.rounds += 1;
        return;
      }
      case 'accepted':
        this.stats.accepted += 1;
        return;
      case 'rejected':
        this.stats.rejected += 1;
        this.stats.lastRejection = `${message.code}: ${message.reason}`;
        return;
      default:
        return;
    }
  }

  private ready(sessionId: number, paramCount: number): void {
    if (!this.frame || (this.frame.byteLength - FRAME_HEADER_BYTES) / 4 !== paramCount) {
      // A gradient-sized update: small values, finite, far below the norm limit.
      let payload = this.payloadOf?.(paramCount);
      if (!payload) {
        payload = new Float32Array(paramCount);
        for (let i = 0; i < paramCount; i++) payload[i] = ((((i * 2654435761) >>> 0) % 2001) / 1000 - 1) * 1e-4;
      }
      this.frame = encodeFrame({ kind: FrameKind.Gradient, sessionId, round: 0, nodeId: 0, attempt: 0, modelVersion: 0, sampleCount: 0, trainLoss: 2.3 }, payload);
    }
    this.send({ v: 1, type: 'ready', sessionId });
  }

  private startHeartbeat(ms: number): void {
    this.stopHeartbeat();
    // Spread the agents' heartbeats over the period instead of sending them all in the same tick.
    const first = setTimeout(() => {
      this.heartbeat = setInterval(() => this.send({ v: 1, type: 'heartbeat', at: Date.now(), round: null }), ms || this.heartbeatMs);
    }, Math.random() * (ms || this.heartbeatMs));
    this.heartbeat = first;
  }

  private stopHeartbeat(): void {
    if (this.heartbeat) {
      clearTimeout(this.heartbeat);
      clearInterval(this.heartbeat);
    }
    this.heartbeat = null;
  }

  /** Stops reading from the socket (heartbeats still go out): a slow reader, as the coordinator sees it. */
  stopReading(): void {
    this.socket?.pause();
  }

  /** True once the coordinator (or anything) closed the connection. */
  get disconnected(): boolean {
    return this.stats.closes > 0;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopHeartbeat();
    this.socket?.terminate();
  }
}
