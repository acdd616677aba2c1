// The agent channel over WebSocket: only I/O. It validates every message and decodes every frame header at
// the edge, then hands typed traffic to the agent channel service. Text frames carry small versioned JSON
// control messages; binary frames carry tensors (protocol/frame.ts). Nothing an agent sends can throw past
// this file.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { HyperGpuError } from '../../protocol/errors';
import { CLOSE_CODES, type AgentChannelHandler, type AgentLink, type CoordinatorMessage } from '../core/agent-protocol';
import { agentMessageSchema, parseMessage } from '../../protocol/messages';
import { decodeHeader, type FrameHeader } from '../../protocol/frame';
import { closeCodeFor } from '../core/error-table';
import { sanitizeText } from '../core/sanitize';

/** How often the gateway pings a registered agent to time its link (a ping is a few bytes each way). */
const LINK_PING_MS = 2_000;

export interface AgentGatewayOptions {
  /** Largest frame accepted from a registered agent, in bytes (the largest model frame the coordinator serves). */
  maxFrameBytes: number;
  /** Largest frame accepted before `hello` (a hello is well under 4 KiB): nothing big is buffered for a stranger. */
  preHelloFrameBytes: number;
  /** A connection that has not sent hello this long after opening is closed (HELLO_TIMEOUT). */
  helloTimeoutMs: number;
  /** Control messages per second a connection may send before it is closed as a flood. */
  maxMessagesPerSecond: number;
  /** Byte-rate limit per connection: a token bucket refilled at this rate (bytes/s)... */
  bytesPerSecond: number;
  /** ...holding at most this many bytes (the largest burst). A connection that overdraws it is closed. */
  burstBytes: number;
  /** Open agent connections in all, and per remote address; more are refused at the upgrade (HTTP 503). */
  maxConnections: number;
  maxConnectionsPerAddress: number;
  /** A peer that has this much unsent data queued when more is to be sent is disconnected as a slow reader. */
  maxBufferedBytes: number;
  /** An address with this many strikes (protocol errors, closes for abuse) within strikeWindowMs... */
  offenderStrikes: number;
  strikeWindowMs: number;
  /** ...is refused at the upgrade (HTTP 429) for this long. */
  offenderBanMs: number;
}

export interface AgentGateway {
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  connections(): number;
  /** The operator bans an address: its open agent sockets are closed and its upgrades refused until then. Returns how many closed. */
  banAddress(address: string, untilMs: number, reason: string): number;
  close(): Promise<void>;
}

export function createAgentGateway(handler: AgentChannelHandler, options: AgentGatewayOptions): AgentGateway {
  // ws has one maxPayload per server, checked when a frame's length is read (before its payload is buffered).
  // The server's is the pre-hello cap; a registered connection's receiver gets the model-sized one (below).
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.preHelloFrameBytes, perMessageDeflate: false });
  let nextConnection = 1;
  /** Sockets accepted at the upgrade and not yet closed, per remote address (handshakes in flight count). */
  let open = 0;
  const openPerAddress = new Map<string, number>();
  const strikes = new Map<string, number[]>();
  const bannedUntil = new Map<string, number>();
  /** Open sockets by remote address, so an operator's ban can close them. */
  const socketsOf = new Map<string, Set<WebSocket>>();

  /** Counts a strike against an address; enough of them in the window and the address is refused for a while. */
  const strike = (address: string, what: string) => {
    const now = Date.now();
    const recent = (strikes.get(address) ?? []).filter((at) => now - at < options.strikeWindowMs);
    recent.push(now);
    if (recent.length >= options.offenderStrikes) {
      strikes.delete(address);
      bannedUntil.set(address, now + options.offenderBanMs);
      handler.protocolError(null, `address ${address} refused for ${Math.round(options.offenderBanMs / 1000)} s: ${recent.length} protocol errors or abusive closes within ${Math.round(options.strikeWindowMs / 1000)} s (last: ${what})`);
    } else {
      strikes.set(address, recent);
    }
    // Bounded: an attacker with many addresses must not grow these maps without end.
    if (strikes.size > 10_000) strikes.delete(strikes.keys().next().value!);
    if (bannedUntil.size > 10_000) bannedUntil.delete(bannedUntil.keys().next().value!);
  };

  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    const address = request.socket.remoteAddress ?? 'unknown';
    const remote = `${address}:${request.socket.remotePort}`;
    const connection = nextConnection++;
    let nodeId: number | null = null;
    let registering = false;
    let windowStart = Date.now();
    let messagesInWindow = 0;
    let bucket = options.burstBytes;
    let bucketAt = Date.now();
    /** Why we ended the connection, when the close code alone would not say (a terminate reports 1006). */
    let endedBecause: string | null = null;

    // Link measurements. Round trip: a WebSocket ping every few seconds once registered (agents answer pongs by
    // themselves). Upload: the time from the first TCP chunk after the previous message to the end of an update
    // frame, read from the raw socket's chunks; frames under 64 KiB or faster than a millisecond are too short
    // to time and are skipped.
    let pingSentAt: number | null = null;
    let firstChunkAt: number | null = null;
    // Prepended: it must see a chunk before ws parses it (and emits the message that chunk completes).
    request.socket.prependListener('data', () => {
      if (firstChunkAt === null) firstChunkAt = performance.now();
    });
    // Control frames are not messages: the next message's clock starts after them.
    socket.on('ping', () => (firstChunkAt = null));
    socket.on('pong', () => {
      firstChunkAt = null;
      if (pingSentAt === null || nodeId === null) return;
      const rttMs = performance.now() - pingSentAt;
      pingSentAt = null;
      handler.linkMeasured?.(connection, nodeId, { rttMs });
    });
    const pinger = setInterval(() => {
      if (nodeId === null || socket.readyState !== socket.OPEN || pingSentAt !== null) return;
      pingSentAt = performance.now();
      socket.ping();
    }, LINK_PING_MS);
    pinger.unref();

    const helloTimer = setTimeout(() => {
      if (nodeId !== null || registering) return;
      endedBecause = `no hello within ${options.helloTimeoutMs} ms`;
      strike(address, 'hello timeout');
      link.close(closeCodeFor('HELLO_TIMEOUT'), `HELLO_TIMEOUT: send hello within ${options.helloTimeoutMs} ms of connecting`);
      // A peer that does not answer the close handshake either is cut off: it holds a socket and a slot.
      setTimeout(() => socket.terminate(), 1000).unref();
    }, options.helloTimeoutMs);
    helloTimer.unref();

    /** True when the peer is not reading what we send: then it is cut off instead of buffering without end. */
    const slowReader = (): boolean => {
      if (socket.bufferedAmount <= options.maxBufferedBytes) return false;
      endedBecause = `slow reader: ${socket.bufferedAmount} bytes queued unread (bound ${options.maxBufferedBytes})`;
      handler.protocolError(nodeId, `SLOW_READER: ${endedBecause} (from ${remote}); disconnecting`);
      // terminate, not close: a close frame would wait behind the very bytes the peer does not read.
      socket.terminate();
      return true;
    };

    const link: AgentLink = {
      sendJson(message: CoordinatorMessage) {
        if (socket.readyState === socket.OPEN && !slowReader()) socket.send(JSON.stringify(message));
      },
      sendBinary(bytes: Uint8Array) {
        if (socket.readyState === socket.OPEN && !slowReader()) socket.send(bytes, { binary: true });
      },
      close(code: number, reason: string) {
        if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(code, closeReason(reason));
      },
    };
    handler.connected(connection, link);

    const fail = (code: string, raw: string, close = false) => {
      // Parse errors may quote what the agent sent: sanitized before it reaches the log (and goes back).
      const message = sanitizeText(raw, 500);
      strike(address, code);
      handler.protocolError(nodeId, `${code}: ${message} (from ${remote})`);
      link.sendJson({ v: 1, type: 'error', code, message });
      if (close) link.close(CLOSE_CODES.protocolError, `${code}: ${message}`);
    };

    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      const now = Date.now();
      if (now - windowStart >= 1000) {
        windowStart = now;
        messagesInWindow = 0;
      }
      if (++messagesInWindow > options.maxMessagesPerSecond) {
        if (messagesInWindow === options.maxMessagesPerSecond + 1) {
          strike(address, 'message flood');
          handler.protocolError(nodeId, `flood: more than ${options.maxMessagesPerSecond} messages/s from ${remote}; closing`);
          link.close(CLOSE_CODES.flood, `more than ${options.maxMessagesPerSecond} messages per second`);
        }
        return;
      }
      const bytes = toUint8Array(data);
      const transferMs = firstChunkAt === null ? 0 : performance.now() - firstChunkAt;
      firstChunkAt = null;
      bucket = Math.min(options.burstBytes, bucket + ((now - bucketAt) / 1000) * options.bytesPerSecond);
      bucketAt = now;
      bucket -= bytes.byteLength;
      if (bucket < 0) {
        if (socket.readyState === socket.OPEN) {
          strike(address, 'byte-rate flood');
          handler.protocolError(nodeId, `RATE_LIMITED: more than ${options.bytesPerSecond} bytes/s (burst ${options.burstBytes}) from ${remote}; closing`);
          link.close(closeCodeFor('RATE_LIMITED'), `RATE_LIMITED: more than ${options.bytesPerSecond} bytes per second`);
        }
        return;
      }
      // Timed only once the frame passed the rate limits: a flood costs no measurement events.
      if (isBinary && nodeId !== null && bytes.byteLength >= 65_536 && transferMs >= 1) {
        handler.linkMeasured?.(connection, nodeId, { uploadBytesPerSecond: (bytes.byteLength * 1000) / transferMs });
      }
      // Any traffic proves the node is alive, not only heartbeats (a big frame can delay the next one); a binary
      // frame says so itself, with its update, and a text frame right after it is parsed (below).
      if (isBinary) {
        if (nodeId === null) return fail('NOT_REGISTERED', 'send hello before any binary frame', true);
        // Decoded once, here: the header now, the payload straight into its aggregator slot if it is admitted.
        let header: FrameHeader | null = null;
        let error: { code: string; message: string } | null = null;
        try {
          header = decodeHeader(bytes);
        } catch (e) {
          error = { code: e instanceof HyperGpuError ? e.code : 'BAD_MESSAGE', message: e instanceof Error ? e.message : String(e) };
        }
        try {
          handler.frame(connection, nodeId, bytes, header, error);
        } catch (e) {
          fail('INTERNAL', `frame could not be processed: ${e instanceof Error ? e.message : String(e)}`);
        }
        return;
      }
      const result = parseMessage(agentMessageSchema, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
      if (nodeId !== null) {
        // A heartbeat may carry the agent's compute share (validated by the schema: a number in [0, 1]).
        const report = result.ok && result.message.type === 'heartbeat' && result.message.computeShare !== undefined ? { computeShare: result.message.computeShare } : undefined;
        handler.heartbeat(connection, nodeId, report);
      }
      if (!result.ok) return fail(result.code, result.reason, result.code === 'PROTOCOL_VERSION');
      const message = result.message;
      switch (message.type) {
        case 'hello': {
          if (nodeId !== null || registering) return fail('BAD_MESSAGE', 'already registered on this connection');
          registering = true;
          clearTimeout(helloTimer);
          handler
            .hello(connection, message.name, message.capabilities, message.token, message.joinToken, message.wallet)
            .then((id) => {
              nodeId = id;
              // Registered: frames up to the largest model frame are accepted from now on. ws 8 has no
              // per-socket limit in its API; the receiver reads this field at every frame header
              // (receiver.js haveLength / controlMessage), so raising it here raises it for this socket only.
              const receiver = (socket as unknown as { _receiver?: { _maxPayload: number } })._receiver;
              if (receiver) receiver._maxPayload = options.maxFrameBytes;
              if (socket.readyState !== socket.OPEN) handler.closed(connection, id, 'connection closed during registration', false);
            })
            .catch((error) => {
              if (error instanceof HyperGpuError) {
                // Refused (a name someone else owns, no valid join token, a banned node): the error table says
                // how to close. Refusals count against the address: guessing join tokens is abuse.
                strike(address, error.code);
                handler.protocolError(null, `${error.message} (from ${remote})`);
                link.sendJson({ v: 1, type: 'error', code: error.code, message: error.message });
                link.close(closeCodeFor(error.code), error.code);
                return;
              }
              fail('INTERNAL', `registration failed: ${error instanceof Error ? error.message : String(error)}`, true);
            })
            .finally(() => (registering = false));
          return;
        }
        case 'heartbeat':
          return; // counted above, like any traffic
        case 'ready':
          if (nodeId === null) return fail('NOT_REGISTERED', 'send hello first');
          handler.ready(connection, nodeId, message.sessionId);
          return;
        case 'goodbye':
          if (nodeId !== null) handler.closed(connection, nodeId, `agent said goodbye: ${sanitizeText(message.reason)}`, true);
          link.close(1000, 'goodbye');
          return;
      }
    });

    const sockets = socketsOf.get(address) ?? new Set<WebSocket>();
    socketsOf.set(address, sockets.add(socket));
    socket.on('close', (code: number, reason: Buffer) => {
      sockets.delete(socket);
      if (sockets.size === 0 && socketsOf.get(address) === sockets) socketsOf.delete(address);
      clearTimeout(helloTimer);
      clearInterval(pinger);
      const why = endedBecause ?? `code ${code}${reason.length ? `: ${sanitizeText(reason.toString())}` : ''}`;
      handler.closed(connection, nodeId, `connection closed (${why})`, false);
    });
    socket.on('error', (error: Error) => {
      // ws reports oversized frames and protocol violations here, then closes the socket.
      strike(address, 'socket error');
      handler.protocolError(nodeId, `socket error from ${remote}: ${sanitizeText(error.message)}`);
    });
  });

  /** Refuses an upgrade before any WebSocket state exists for it: a status line and the socket destroyed. */
  const refuse = (socket: Duplex, status: string, why: string) => {
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(why)}\r\n\r\n${why}`);
    socket.destroy();
  };
  let refusedSinceLog = 0;
  let lastRefusalLog = 0;
  const noteRefusal = (why: string) => {
    // One log line a second at most: a flood of refused connections must not become a flood of log lines.
    refusedSinceLog++;
    const now = Date.now();
    if (now - lastRefusalLog < 1000) return;
    handler.protocolError(null, `refused ${refusedSinceLog} agent connection(s) in the last ${lastRefusalLog ? Math.round((now - lastRefusalLog) / 1000) : 0} s (latest: ${why})`);
    refusedSinceLog = 0;
    lastRefusalLog = now;
  };

  return {
    banAddress(address, untilMs, reason) {
      bannedUntil.set(address, untilMs);
      const open = [...(socketsOf.get(address) ?? [])];
      for (const socket of open) socket.close(CLOSE_CODES.banned, reason.slice(0, 120));
      return open.length;
    },
    handleUpgrade(request, socket, head) {
      const address = request.socket.remoteAddress ?? 'unknown';
      const until = bannedUntil.get(address);
      if (until !== undefined && until > Date.now()) {
        noteRefusal(`${address} is refused until ${new Date(until).toISOString()} for repeated abuse`);
        return refuse(socket, '429 Too Many Requests', `this address is refused until ${new Date(until).toISOString()} after repeated protocol errors\n`);
      }
      if (until !== undefined) bannedUntil.delete(address);
      if (open >= options.maxConnections) {
        noteRefusal(`${options.maxConnections} agent connections open`);
        return refuse(socket, '503 Service Unavailable', `the coordinator has ${options.maxConnections} agent connections open; try again later\n`);
      }
      const fromAddress = openPerAddress.get(address) ?? 0;
      if (fromAddress >= options.maxConnectionsPerAddress) {
        noteRefusal(`${address} has ${fromAddress} connections open`);
        return refuse(socket, '503 Service Unavailable', `${fromAddress} agent connections from this address are open (at most ${options.maxConnectionsPerAddress}); try again later\n`);
      }
      open++;
      openPerAddress.set(address, fromAddress + 1);
      socket.once('close', () => {
        open--;
        const left = (openPerAddress.get(address) ?? 1) - 1;
        if (left <= 0) openPerAddress.delete(address);
        else openPerAddress.set(address, left);
      });
      wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
    },
    connections: () => wss.clients.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}

/** A close reason ws accepts: at most 123 bytes of UTF-8 (it throws on more, and reasons may quote agent text). */
function closeReason(reason: string): string {
  let out = reason.slice(0, 123);
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}

function toUint8Array(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

/**
 * The gateway's limits for a coordinator whose largest model frame is `modelFrameBytes`, with overrides. The
 * defaults are generous for honest agents (one update frame a round) and cheap to enforce against others.
 */
export function gatewayLimits(modelFrameBytes: number, overrides: Partial<AgentGatewayOptions> = {}): AgentGatewayOptions {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Partial<AgentGatewayOptions>;
  const maxFrameBytes = defined.maxFrameBytes ?? modelFrameBytes;
  return {
    maxFrameBytes,
    preHelloFrameBytes: 64 * 1024,
    helloTimeoutMs: 5000,
    maxMessagesPerSecond: 500,
    // 128 frames a second sustained, 256 at once. An honest agent sends one update per round, and rounds with
    // instant simulated agents ran at up to 43 a second here (tests/integration/security-agents.test.ts): about
    // three times the fastest pace seen, so a faster machine does not trip it, while one connection still
    // cannot stream without bound.
    bytesPerSecond: 128 * maxFrameBytes,
    burstBytes: 256 * maxFrameBytes,
    maxConnections: 2000,
    maxConnectionsPerAddress: 64,
    // Four model frames queued unread (or 2 MiB for small models): an honest agent reads each round's frame.
    maxBufferedBytes: Math.max(4 * maxFrameBytes, 2 * 1024 * 1024),
    offenderStrikes: 100,
    strikeWindowMs: 60_000,
    offenderBanMs: 60_000,
    ...defined,
  };
}
