// The agent's link to its coordinator: one WebSocket at a time, re-established with jittered exponential
// backoff whenever it drops; the hello with this node's token; heartbeats out, and a watchdog that cuts a
// link gone silent. Everything received is validated (inbound.ts) before the rest of the agent sees it.
import WebSocket from 'ws';
import type { AgentMessage, CoordinatorMessage, NodeCapabilities } from '../protocol/messages';
import { Backoff } from './backoff';
import { MAX_INBOUND_FRAME_BYTES, readInbound, type ModelFrame } from './inbound';
import type { TokenStore } from './token-store';
import type { NodeWallet } from './wallet';

export type WelcomeMessage = Extract<CoordinatorMessage, { type: 'welcome' }>;
export type ControlMessage = Exclude<CoordinatorMessage, { type: 'welcome' | 'challenge' }>;

export interface ConnectionHandlers {
  /** Registered: heartbeats have started and nodeId is set. */
  onWelcome(welcome: WelcomeMessage): void;
  onControl(message: ControlMessage): void;
  onModelFrame(frame: ModelFrame): void;
}

export interface ConnectionOptions {
  url: string;
  name: string;
  log: (line: string) => void;
  tokens: TokenStore;
  /** Sent in the hello while the name has no node secret yet (the coordinator needs it to admit a new name). */
  joinToken?: string;
  /** CA certificate(s) for a wss:// coordinator with a self-signed certificate. */
  ca?: string | Buffer;
  /** What the hello reports; asked at every (re)connect, so the speed reported is the latest measured. */
  capabilities: () => NodeCapabilities;
  /** The node's wallet: the hello waits for the coordinator's challenge and carries a signature over it. */
  wallet?: NodeWallet;
  /** How long to wait for a challenge before saying hello without a wallet (a coordinator that pays nobody). */
  challengeTimeoutMs?: number;
  /** The round being trained, reported in heartbeats. */
  currentRound: () => number | null;
  /** Time computing over wall time over recent rounds, sent with heartbeats (null: no round yet). */
  computeShare?: () => number | null;
  /** Backoff between reconnect attempts: starts here (250 ms), doubles, capped at maxBackoffMs (10 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Drop the link when nothing (not even a pong) came from the coordinator for this long (3 s). */
  coordinatorTimeoutMs?: number;
  random?: () => number;
  /** Simulated latency: pongs to the coordinator's pings wait this long (so its round-trip measurement sees it). */
  pongDelayMs?: number;
}

/** The server refuses heartbeat intervals under 20 ms too; a welcome asking for less would make us flood. */
const MIN_HEARTBEAT_MS = 20;

export class AgentConnection {
  private socket: WebSocket | null = null;
  private registeredAs: number | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private lastHeardAt = 0;
  private stopped = true;
  private readonly backoff: Backoff;

  constructor(
    private readonly options: ConnectionOptions,
    private readonly handlers: ConnectionHandlers,
  ) {
    this.backoff = new Backoff({ minMs: options.minBackoffMs ?? 250, maxMs: options.maxBackoffMs ?? 10_000, random: options.random });
  }

  /** The id the coordinator gave this node on the current link; null while not registered. */
  get nodeId(): number | null {
    return this.registeredAs;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  /** Says goodbye and closes the link (waiting up to a second for the close); no reconnect after this. */
  async stop(reason: string): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stopHeartbeat();
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    this.send({ v: 1, type: 'goodbye', reason: reason.slice(0, 500) });
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.close(1000, closeReason(reason));
    });
  }

  send(message: AgentMessage): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  /** Sends a sealed frame; false when there is no open link (the update is lost, the round will be retried). */
  sendFrame(bytes: Uint8Array): boolean {
    if (this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(bytes, { binary: true });
    return true;
  }

  private connect(): void {
    if (this.stopped) return;
    const socket = new WebSocket(this.options.url, {
      perMessageDeflate: false,
      maxPayload: MAX_INBOUND_FRAME_BYTES,
      handshakeTimeout: 5000,
      ...(this.options.ca ? { ca: this.options.ca } : {}),
      ...(this.options.pongDelayMs ? { autoPong: false } : {}),
    });
    const pongDelayMs = this.options.pongDelayMs;
    if (pongDelayMs) {
      socket.on('ping', (data: Buffer) => {
        setTimeout(() => socket.readyState === socket.OPEN && socket.pong(data), pongDelayMs).unref();
      });
    }
    this.socket = socket;
    socket.binaryType = 'nodebuffer';
    // Why this link ended, when we know better than the close code: a socket error or our own decision.
    let why: { text: string; unreachable: boolean } | null = null;
    socket.on('open', () => {
      // stop() came while this link was still being set up: leave instead of registering.
      if (this.stopped) return socket.close(1000, 'agent stopping');
      if (!this.options.wallet) return this.hello(socket, undefined);
      // The hello waits for the challenge it signs; a coordinator that sends none gets a hello without a wallet.
      helloTimer = setTimeout(() => {
        if (this.socket !== socket || helloSent) return;
        this.options.log(`no wallet challenge from the coordinator within ${this.options.challengeTimeoutMs ?? 3000} ms: joining without a wallet (nothing can be paid)`);
        this.hello(socket, undefined);
        helloSent = true;
      }, this.options.challengeTimeoutMs ?? 3000);
    });
    let helloSent = false;
    let helloTimer: NodeJS.Timeout | null = null;
    const onChallenge = (challenge: Extract<CoordinatorMessage, { type: 'challenge' }>['challenge']) => {
      const wallet = this.options.wallet;
      if (!wallet || helloSent) return;
      helloSent = true;
      if (helloTimer) clearTimeout(helloTimer);
      wallet.sign(challenge, this.options.name).then(
        (signature) => {
          if (this.socket !== socket) return;
          this.hello(socket, { address: wallet.address, payout: wallet.payout, nonce: challenge.nonce, expiresAt: challenge.expiresAt, signature });
        },
        (error) => {
          this.options.log(`could not sign the wallet challenge: ${error instanceof Error ? error.message : String(error)}`);
          socket.terminate();
        },
      );
    };
    socket.on('pong', () => (this.lastHeardAt = Date.now()));
    socket.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      if (this.socket !== socket) return;
      this.lastHeardAt = Date.now();
      const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      const inbound = readInbound(bytes, isBinary);
      if (!inbound.ok) {
        this.options.log(`${inbound.reason}; ${inbound.reconnect ? 'dropping the connection' : 'ignored'}`);
        if (inbound.reconnect) {
          why = { text: inbound.reason, unreachable: false };
          socket.terminate();
        }
        return;
      }
      try {
        if (inbound.kind === 'model') this.handlers.onModelFrame(inbound.frame);
        else if (inbound.message.type === 'welcome') this.welcome(socket, inbound.message);
        else if (inbound.message.type === 'challenge') onChallenge(inbound.message.challenge);
        else this.handlers.onControl(inbound.message);
      } catch (error) {
        // A bug in a handler must not take the agent down with it; say what it choked on.
        const what = inbound.kind === 'model' ? 'a model frame' : `a ${inbound.message.type} message`;
        this.options.log(`internal error handling ${what}: ${error instanceof Error ? error.stack : String(error)}`);
      }
    });
    socket.on('close', (code: number, reason: Buffer) => {
      if (helloTimer) clearTimeout(helloTimer);
      this.stopHeartbeat();
      if (this.socket !== socket) return;
      this.socket = null;
      this.registeredAs = null;
      if (this.stopped) return;
      const delay = this.backoff.next();
      const detail = why?.text ?? `code ${code}${reason.length ? `: ${reason.toString()}` : ''}`;
      this.options.log(`${why?.unreachable ? 'cannot reach coordinator' : 'disconnected'} (${detail}); reconnecting in ${delay} ms`);
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    });
    socket.on('error', (error: Error) => {
      // 'close' follows, reports it and schedules the reconnect.
      why ??= { text: error.message, unreachable: true };
    });
  }

  private hello(socket: WebSocket, wallet: Extract<AgentMessage, { type: 'hello' }>['wallet']): void {
    if (this.socket !== socket) return;
    const token = this.options.tokens.get();
    // A returning node proves its name with its own secret and the coordinator ignores the join token then;
    // it is sent anyway, so a name pruned while idle (its secret forgotten there) is admitted again.
    const joinToken = this.options.joinToken;
    this.send({
      v: 1,
      type: 'hello',
      name: this.options.name,
      ...(token ? { token } : {}),
      ...(joinToken ? { joinToken } : {}),
      ...(wallet ? { wallet } : {}),
      capabilities: this.options.capabilities(),
    });
  }

  private welcome(socket: WebSocket, welcome: WelcomeMessage): void {
    if (welcome.token) this.options.tokens.save(welcome.token);
    this.registeredAs = welcome.nodeId;
    // Only a link that got as far as registering resets the backoff: one that opens and is then refused (or
    // speaks another protocol version) must not be retried four times a second forever.
    this.backoff.reset();
    this.startHeartbeat(socket, welcome.heartbeatMs);
    this.options.log(`registered as node #${welcome.nodeId} with ${this.options.url}`);
    this.handlers.onWelcome(welcome);
  }

  /**
   * Heartbeats tell the coordinator this node is alive; pings tell this node the coordinator is. A link that
   * goes silent without closing (a partition, a black hole) is cut here so the reconnect loop takes over.
   */
  private startHeartbeat(socket: WebSocket, requestedMs: number): void {
    this.stopHeartbeat();
    const intervalMs = Math.max(MIN_HEARTBEAT_MS, requestedMs);
    // Pongs come back once per interval at best: a coordinator with slow heartbeats is not silent.
    const silentLimitMs = Math.max(this.options.coordinatorTimeoutMs ?? 3000, 3 * intervalMs);
    this.lastHeardAt = Date.now();
    this.heartbeatTimer = setInterval(() => {
      if (this.socket !== socket || socket.readyState !== WebSocket.OPEN) return;
      const silentFor = Date.now() - this.lastHeardAt;
      if (silentFor > silentLimitMs) {
        this.options.log(`coordinator silent for ${silentFor} ms; dropping the connection`);
        socket.terminate();
        return;
      }
      const share = this.options.computeShare?.() ?? null;
      this.send({ v: 1, type: 'heartbeat', at: Date.now(), round: this.options.currentRound(), ...(share === null ? {} : { computeShare: share }) });
      socket.ping();
    }, intervalMs);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }
}

/** WebSocket close reasons are limited to 123 bytes of UTF-8; ws throws on longer ones. */
function closeReason(reason: string): string {
  let text = reason.slice(0, 123);
  while (Buffer.byteLength(text) > 123) text = text.slice(0, -1);
  return text;
}
