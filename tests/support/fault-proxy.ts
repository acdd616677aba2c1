// A fault-injecting TCP proxy for tests (tooling, not product). It pipes plain TCP, so WebSocket traffic
// goes through it unchanged, and it can be switched at any time to:
//   pass       forward bytes both ways (optionally each chunk delayed by a fixed one-way latency)
//   drop       destroy every current connection and close new ones as soon as they are accepted
//   blackhole  keep every socket open but silently discard the bytes in both directions; new connections
//              are accepted but never connected upstream (a partition: nothing gets through, nothing closes)
// A close on one side during a blackhole is not passed on (a partition hides it). When the blackhole heals,
// the connections it broke are reset, as TCP would once packets flow again: those accepted during it (their
// first bytes were discarded, they never reached the target) and those whose other side closed meanwhile.
// Connections that lived through it intact resume, minus the bytes that were discarded.
import net from 'node:net';

export type FaultMode = 'pass' | 'drop' | 'blackhole';

export interface FaultProxyOptions {
  targetPort: number;
  targetHost?: string;
  /** 0 (default): any free port. */
  listenPort?: number;
  /** Interface to listen on (default 127.0.0.1). */
  listenHost?: string;
}

export interface ProxyConnectionInfo {
  id: number;
  openedAt: number;
  /** Bytes client -> target and target -> client that were forwarded (delivered to the other side). */
  bytesUp: number;
  bytesDown: number;
  /** Bytes discarded by a blackhole, both directions together. */
  bytesDiscarded: number;
  /** True while the connection has an upstream socket to the target. */
  upstream: boolean;
}

export interface FaultProxy {
  /** The port the proxy listens on (127.0.0.1 by default). */
  readonly port: number;
  readonly mode: FaultMode;
  readonly latencyMs: number;
  setMode(mode: FaultMode): void;
  /** Added one-way delay for every chunk in both directions; order is preserved. */
  setLatency(ms: number): void;
  /** Back to pass with no latency. */
  heal(): void;
  /** The connections open now. */
  connections(): ProxyConnectionInfo[];
  /** Connections accepted since the proxy started (including closed and refused ones). */
  readonly accepted: number;
  close(): Promise<void>;
}

interface Pending {
  at: number;
  data: Buffer;
}

/** One direction of a connection: source -> sink, with an optional delay queue. */
class Lane {
  private readonly queue: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private ended = false;
  private closeAfterFlush = false;
  bytes = 0;

  constructor(
    private readonly sink: () => net.Socket | null,
    private readonly onFlushedClose: () => void,
  ) {}

  push(data: Buffer, latencyMs: number): void {
    if (latencyMs <= 0 && this.queue.length === 0) {
      this.write(data);
      return;
    }
    this.queue.push({ at: Date.now() + latencyMs, data });
    this.schedule();
  }

  /** The source ended (FIN): end the sink once everything before it was delivered. */
  end(): void {
    this.ended = true;
    if (this.queue.length === 0) this.sink()?.end();
  }

  /** The source closed: close the connection once everything before it was delivered. */
  closeWhenFlushed(): void {
    this.closeAfterFlush = true;
    if (this.queue.length === 0) this.onFlushedClose();
  }

  clear(): void {
    this.queue.length = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private write(data: Buffer): void {
    const sink = this.sink();
    if (!sink || sink.destroyed) return;
    this.bytes += data.length;
    sink.write(data);
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    const wait = Math.max(0, this.queue[0].at - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      const now = Date.now();
      while (this.queue.length && this.queue[0].at <= now) this.write(this.queue.shift()!.data);
      if (this.queue.length) {
        this.schedule();
        return;
      }
      if (this.ended) this.sink()?.end();
      if (this.closeAfterFlush) this.onFlushedClose();
    }, wait);
  }
}

export async function createFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const targetHost = options.targetHost ?? '127.0.0.1';
  const listenHost = options.listenHost ?? '127.0.0.1';
  let mode: FaultMode = 'pass';
  let latencyMs = 0;
  let accepted = 0;
  let nextId = 1;

  interface Conn {
    info: ProxyConnectionInfo;
    client: net.Socket;
    target: net.Socket | null;
    up: Lane;
    down: Lane;
    /** Accepted while blackholed: no upstream, its first bytes are gone. */
    bornInBlackhole: boolean;
    /** One side closed while blackholed; the other side is reset when the blackhole heals. */
    brokenInBlackhole: boolean;
    closed: boolean;
  }
  const conns = new Map<number, Conn>();

  const destroy = (conn: Conn) => {
    if (conn.closed) return;
    conn.closed = true;
    conn.up.clear();
    conn.down.clear();
    conn.client.destroy();
    conn.target?.destroy();
    conns.delete(conn.info.id);
  };

  const onSideClosed = (conn: Conn, lane: Lane) => {
    if (conn.closed) return;
    if (mode === 'blackhole') {
      conn.brokenInBlackhole = true;
      return;
    }
    lane.closeWhenFlushed();
  };

  const attach = (conn: Conn) => {
    const target = net.connect({ port: options.targetPort, host: targetHost });
    target.setNoDelay(true);
    conn.target = target;
    conn.info.upstream = true;
    target.on('data', (data: Buffer) => {
      if (mode === 'blackhole') {
        conn.info.bytesDiscarded += data.length;
        return;
      }
      conn.down.push(data, latencyMs);
    });
    target.on('end', () => {
      if (mode === 'blackhole') conn.brokenInBlackhole = true;
      else conn.down.end();
    });
    target.on('error', () => undefined);
    target.on('close', () => onSideClosed(conn, conn.down));
  };

  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (client) => {
    accepted += 1;
    client.setNoDelay(true);
    client.on('error', () => undefined);
    if (mode === 'drop') {
      client.destroy();
      return;
    }
    const id = nextId++;
    // Lanes look their sink up lazily: the upstream socket may be created after the lane.
    const holder: { conn: Conn | null } = { conn: null };
    const up = new Lane(
      () => holder.conn?.target ?? null,
      () => holder.conn && destroy(holder.conn),
    );
    const down = new Lane(
      () => holder.conn?.client ?? null,
      () => holder.conn && destroy(holder.conn),
    );
    const conn: Conn = {
      info: { id, openedAt: Date.now(), bytesUp: 0, bytesDown: 0, bytesDiscarded: 0, upstream: false },
      client,
      target: null,
      up,
      down,
      bornInBlackhole: mode === 'blackhole',
      brokenInBlackhole: false,
      closed: false,
    };
    holder.conn = conn;
    conns.set(id, conn);
    client.on('data', (data: Buffer) => {
      if (mode === 'blackhole' || !conn.target) {
        conn.info.bytesDiscarded += data.length;
        return;
      }
      conn.up.push(data, latencyMs);
    });
    client.on('end', () => {
      if (mode === 'blackhole') conn.brokenInBlackhole = true;
      else if (conn.target) conn.up.end();
      else destroy(conn);
    });
    client.on('close', () => {
      if (!conn.target) {
        if (mode === 'blackhole') conn.brokenInBlackhole = true;
        else destroy(conn);
        return;
      }
      onSideClosed(conn, conn.up);
    });
    if (!conn.bornInBlackhole) attach(conn);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listenPort ?? 0, listenHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const setMode = (next: FaultMode) => {
    const previous = mode;
    mode = next;
    if (next === 'drop') {
      for (const conn of [...conns.values()]) destroy(conn);
      return;
    }
    if (next === 'blackhole') {
      // Whatever was still queued for delivery is lost as well.
      for (const conn of conns.values()) {
        conn.up.clear();
        conn.down.clear();
      }
      return;
    }
    if (previous === 'blackhole') {
      for (const conn of [...conns.values()]) {
        if (conn.bornInBlackhole || conn.brokenInBlackhole || conn.client.destroyed || conn.target?.destroyed) destroy(conn);
      }
    }
  };

  return {
    port,
    get mode() {
      return mode;
    },
    get latencyMs() {
      return latencyMs;
    },
    get accepted() {
      return accepted;
    },
    setMode,
    setLatency(ms: number) {
      if (!Number.isFinite(ms) || ms < 0) throw new Error(`latency must be a non-negative number of ms (got ${ms})`);
      latencyMs = ms;
    },
    heal() {
      latencyMs = 0;
      setMode('pass');
    },
    connections() {
      return [...conns.values()].map((c) => ({ ...c.info, bytesUp: c.up.bytes, bytesDown: c.down.bytes }));
    },
    close() {
      for (const conn of [...conns.values()]) destroy(conn);
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
