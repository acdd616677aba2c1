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

export interface AgentGatewayOptions {
  /** Largest frame accepted, in bytes; larger ones close the connection (ws enforces it before buffering). */
  maxFrameBytes: number;
  /** Control messages per second a connection may send before it is closed as a flood. */
  maxMessagesPerSecond: number;
}

export interface AgentGateway {
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
  connections(): number;
  close(): Promise<void>;
}

export function createAgentGateway(handler: AgentChannelHandler, options: AgentGatewayOptions): AgentGateway {
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes, perMessageDeflate: false });
  let nextConnection = 1;

  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    const remote = `${request.socket.remoteAddress}:${request.socket.remotePort}`;
    const connection = nextConnection++;
    let nodeId: number | null = null;
    let registering = false;
    let windowStart = Date.now();
    let messagesInWindow = 0;

    const link: AgentLink = {
      sendJson(message: CoordinatorMessage) {
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
      },
      sendBinary(bytes: Uint8Array) {
        if (socket.readyState === socket.OPEN) socket.send(bytes, { binary: true });
      },
      close(code: number, reason: string) {
        if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(code, reason.slice(0, 120));
      },
    };
    handler.connected(connection, link);

    const fail = (code: string, message: string, close = false) => {
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
        handler.protocolError(nodeId, `flood: more than ${options.maxMessagesPerSecond} messages/s from ${remote}; closing`);
        link.close(CLOSE_CODES.flood, `more than ${options.maxMessagesPerSecond} messages per second`);
        return;
      }
      const bytes = toUint8Array(data);
      // Any traffic proves the node is alive, not only heartbeats (a big frame can delay the next one).
      if (nodeId !== null) handler.heartbeat(connection, nodeId);
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
      if (!result.ok) return fail(result.code, result.reason, result.code === 'PROTOCOL_VERSION');
      const message = result.message;
      switch (message.type) {
        case 'hello': {
          if (nodeId !== null || registering) return fail('BAD_MESSAGE', 'already registered on this connection');
          registering = true;
          handler
            .hello(connection, message.name, message.capabilities, message.token)
            .then((id) => {
              nodeId = id;
              if (socket.readyState !== socket.OPEN) handler.closed(connection, id, 'connection closed during registration', false);
            })
            .catch((error) => {
              if (error instanceof HyperGpuError) {
                // Refused (a name someone else owns, a banned node): the error table says how to close.
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
          if (nodeId !== null) handler.closed(connection, nodeId, `agent said goodbye: ${message.reason}`, true);
          link.close(1000, 'goodbye');
          return;
      }
    });

    socket.on('close', (code: number, reason: Buffer) => {
      handler.closed(connection, nodeId, `connection closed (code ${code}${reason.length ? `: ${reason.toString()}` : ''})`, false);
    });
    socket.on('error', (error: Error) => {
      // ws reports oversized frames and protocol violations here, then closes the socket.
      handler.protocolError(nodeId, `socket error from ${remote}: ${error.message}`);
    });
  });

  return {
    handleUpgrade(request, socket, head) {
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

function toUint8Array(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}
