// /ws: the coordinator's live events as plain JSON over a WebSocket, for clients that do not speak tRPC (a script,
// a terminal monitor, another language). On connect the socket gets the status ({ type: 'status', status }), then
// every 'status', 'metric' (a committed round, or its evaluation), 'node' and 'timeline' event as it happens, one
// JSON text message each: the CoordinatorEvent shapes of core/events.ts (non-finite numbers as null, as JSON writes
// them). Log lines are not streamed.
//
// Read-only: a client message closes the socket (1008). Bounded: at most `maxClients` sockets (more are refused
// with 503 before the handshake), and a socket whose unsent data passes `maxBufferedBytes` is a slow reader and is
// closed (4011) rather than buffered without end. Each event is serialized once for every socket.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { CoordinatorEvent, StatusSnapshot } from '../core/events';
import { checkAccess, type Caller } from '../core/operator-access';
import type { EventPublisher } from '../core/ports';

export const EVENTS_WS_PATH = '/ws';

export interface EventStreamSource {
  status(): StatusSnapshot;
  readonly events: EventPublisher;
}

export interface EventStreamOptions {
  /** Sockets open at once (default 64). */
  maxClients: number;
  /** Unsent bytes one socket may hold before it is closed as a slow reader (default 1 MiB). */
  maxBufferedBytes: number;
}

export const EVENT_STREAM_DEFAULTS: EventStreamOptions = { maxClients: 64, maxBufferedBytes: 1024 * 1024 };

/** Close codes: the client sent something (the stream is read-only), or it reads too slowly. */
export const EVENT_STREAM_CLOSE = { readOnly: 1008, slowReader: 4011, shutdown: 1001 } as const;

const STREAMED: ReadonlySet<CoordinatorEvent['type']> = new Set(['status', 'metric', 'node', 'timeline']);

export interface EventStream {
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, caller: Caller, privateReads: boolean): void;
  /** Sockets open now. */
  readonly clients: number;
  close(): void;
}

export function createEventStream(source: EventStreamSource, options: Partial<EventStreamOptions> = {}): EventStream {
  const { maxClients, maxBufferedBytes } = { ...EVENT_STREAM_DEFAULTS, ...options };
  // Clients send nothing; a small limit keeps a hostile one from making us buffer a large frame.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024, clientTracking: false });
  const clients = new Set<WebSocket>();

  const deliver = (ws: WebSocket, text: string) => {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount + text.length > maxBufferedBytes) {
      clients.delete(ws);
      ws.close(EVENT_STREAM_CLOSE.slowReader, 'slow reader: events were not read fast enough');
      // A peer that does not read may never complete the close handshake either.
      setTimeout(() => ws.terminate(), 1_000).unref();
      return;
    }
    ws.send(text);
  };

  const unsubscribe = source.events.subscribe((event) => {
    if (!STREAMED.has(event.type) || clients.size === 0) return;
    const text = JSON.stringify(event);
    for (const ws of clients) deliver(ws, text);
  });

  const refuse = (socket: Duplex, status: string, code: string, message: string) => {
    const body = JSON.stringify({ error: { code, message } });
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  };

  return {
    handleUpgrade(req, socket, head, caller, privateReads) {
      try {
        checkAccess('the event stream', 'public', caller, privateReads);
      } catch (error) {
        const forbidden = caller.kind === 'invalid';
        return refuse(socket, forbidden ? '403 Forbidden' : '401 Unauthorized', forbidden ? 'FORBIDDEN' : 'UNAUTHORIZED', (error as Error).message);
      }
      if (clients.size >= maxClients) return refuse(socket, '503 Service Unavailable', 'RATE_LIMITED', `the event stream has ${maxClients} clients already`);
      wss.handleUpgrade(req, socket, head, (ws) => {
        clients.add(ws);
        ws.on('message', () => {
          clients.delete(ws);
          ws.close(EVENT_STREAM_CLOSE.readOnly, 'this stream is read-only');
        });
        ws.on('close', () => clients.delete(ws));
        ws.on('error', () => clients.delete(ws));
        deliver(ws, JSON.stringify({ type: 'status', status: source.status() } satisfies CoordinatorEvent));
      });
    },
    get clients() {
      return clients.size;
    },
    close() {
      unsubscribe();
      for (const ws of clients) ws.close(EVENT_STREAM_CLOSE.shutdown, 'server shutting down');
      for (const ws of clients) ws.terminate();
      clients.clear();
      wss.close();
    },
  };
}
