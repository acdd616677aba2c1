// The receiving side of the transport benchmark, run as its own process (like the coordinator is):
//   - the product's agent gateway (src/server/adapters/agent-gateway.ts: ws, perMessageDeflate off, the
//     runtime's maxPayload and flood limit) behind an http server's upgrade, as in runtime.ts, with a stand-in
//     coordinator that decodes each update frame into an aggregator-pool slot (decodeFrameInto with the pool's
//     inspection kernel, as the coordinator does) and answers `accepted`;
//   - a raw TCP server (node:net) receiving the same bytes with a 5-byte prefix (u32 length, u8 mode) into one
//     buffer, decoding them the same way, and answering with one byte.
// Mode 1 (attempt 1 in a frame): decode. Mode 2: header only, then the answer (transport alone).
// Prints one JSON line with the ports once both listen; exits when its parent goes away.
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { createRequire } from 'node:module';
import { createAgentGateway, gatewayLimits } from '../../src/server/adapters/agent-gateway';
import { createAggregatorPool } from '../../src/server/adapters/workers/aggregator-pool';
import type { UpdateSlot } from '../../src/server/core/ports';
import type { AgentChannelHandler, AgentLink } from '../../src/server/core/agent-protocol';
import { decodeFrameInto, decodeHeader } from '../../src/protocol/frame';

// Updates land in slots of the product's aggregator pool and are inspected by its kernel, as in receiveFrame.
const pool = await createAggregatorPool({});
const slots = new Map<number, UpdateSlot>();
function slotFor(paramCount: number): UpdateSlot {
  let slot = slots.get(paramCount);
  if (!slot) {
    slot = pool.acquire(paramCount);
    slots.set(paramCount, slot);
  }
  return slot;
}

function receive(bytes: Uint8Array, decode: boolean): { round: number; samples: number } {
  const header = decodeHeader(bytes);
  if (decode) {
    const slot = slotFor(header.paramCount);
    decodeFrameInto(bytes, slot.view, () => pool.inspect(slot));
  }
  return { round: header.round, samples: header.sampleCount };
}

const connections = new Map<number, AgentLink>();
const links = new Map<number, AgentLink>();
let nextId = 1;
const handler: AgentChannelHandler = {
  connected(connection, link) {
    connections.set(connection, link);
  },
  async hello(connection) {
    const id = nextId++;
    const link = connections.get(connection)!;
    links.set(id, link);
    link.sendJson({ v: 1, type: 'welcome', nodeId: id, heartbeatMs: 200, session: null });
    return id;
  },
  ready() {},
  heartbeat() {},
  closed(connection, nodeId) {
    connections.delete(connection);
    if (nodeId !== null) links.delete(nodeId);
  },
  frame(_connection, nodeId, bytes) {
    const link = links.get(nodeId);
    try {
      const attempt = new DataView(bytes.buffer, bytes.byteOffset, 64).getUint32(20, true);
      const { round, samples } = receive(bytes, attempt === 1);
      link?.sendJson({ v: 1, type: 'accepted', round, samples });
    } catch (error) {
      link?.sendJson({ v: 1, type: 'rejected', round: 0, code: 'BENCH', reason: error instanceof Error ? error.message : String(error) });
    }
  },
  protocolError(nodeId, message) {
    process.stderr.write(`gateway: node ${nodeId}: ${message}\n`);
  },
};

// A transport benchmark, not a security test: big frames at full speed from one address, no rate limits.
const gateway = createAgentGateway(
  handler,
  gatewayLimits(256 * 1024 * 1024, { bytesPerSecond: Number.MAX_SAFE_INTEGER, burstBytes: Number.MAX_SAFE_INTEGER, maxConnectionsPerAddress: 100_000, maxBufferedBytes: Number.MAX_SAFE_INTEGER }),
);
const http = createHttpServer((_req, res) => res.end('transport bench'));
http.on('upgrade', (req, socket, head) => gateway.handleUpgrade(req, socket, head));

const tcp = createTcpServer((socket: Socket) => {
  socket.setNoDelay(true);
  let header = Buffer.alloc(0);
  let message: Buffer | null = null;
  let filled = 0;
  let mode = 0;
  socket.on('data', (chunk: Buffer) => {
    let offset = 0;
    while (offset < chunk.length) {
      if (!message) {
        const need = 5 - header.length;
        header = Buffer.concat([header, chunk.subarray(offset, offset + need)]);
        offset += Math.min(need, chunk.length - offset);
        if (header.length < 5) return;
        message = Buffer.allocUnsafe(header.readUInt32LE(0));
        mode = header[4];
        filled = 0;
        header = Buffer.alloc(0);
      }
      const take = Math.min(message.length - filled, chunk.length - offset);
      chunk.copy(message, filled, offset, offset + take);
      filled += take;
      offset += take;
      if (filled === message.length) {
        receive(message, mode === 1);
        message = null;
        socket.write(Buffer.of(1));
      }
    }
  });
  socket.on('error', () => {});
});

let bufferutil = false;
try {
  createRequire(import.meta.url)('bufferutil');
  bufferutil = !process.env.WS_NO_BUFFER_UTIL;
} catch {
  bufferutil = false;
}

http.listen(0, '127.0.0.1', () => {
  tcp.listen(0, '127.0.0.1', () => {
    const wsAddress = http.address();
    const tcpAddress = tcp.address();
    const wsPort = typeof wsAddress === 'object' && wsAddress ? wsAddress.port : 0;
    const tcpPort = typeof tcpAddress === 'object' && tcpAddress ? tcpAddress.port : 0;
    process.stdout.write(`${JSON.stringify({ wsPort, tcpPort, bufferutil, pid: process.pid })}\n`);
  });
});

// The parent talks to us over IPC only to hold the channel open: when it goes, so do we.
process.on('disconnect', () => process.exit(0));
