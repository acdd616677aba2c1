// Transport: one 4 MB update (P = 1M float32, the product frame) from an agent-like ws client to the product's
// agent gateway in another process on loopback, against raw TCP (node:net) carrying the same bytes between the
// same two processes. Measured one message at a time (latency: from the start of encoding to the server's
// answer), variants interleaved in blocks so that load changes hit all of them alike:
//   full:      encodeFrame + send + receive + decodeFrameInto into a pool slot (+ the pool's inspection) + answer
//   transport: a pre-encoded frame, the server reads the header only, then answers
// Plus a streamed figure (50 pre-encoded frames back to back) and, for analysis, the same ws path with a
// zero masking key (ws then skips masking; not what the agent does).
//   npm run bench -- transport             (about 10 s)
import path from 'node:path';
import { connect as tcpConnect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { encodeFrame, FrameKind } from '../src/protocol/frame';
import { atLeast, fmt, fmtMs, median, percentile, ROOT, row, type BenchOptions, type BenchOutcome, type Benchmark } from './lib/common';
import { spawnTracked, stopChild } from './lib/procs';

const PARAMS = 1_000_000;

type Variant = 'ws-full' | 'tcp-full' | 'ws-transport' | 'tcp-transport' | 'ws-zero-mask-full' | 'ws-zero-mask-transport';

interface Channel {
  /** Sends one frame (mode 1: server decodes; 2: header only) and resolves when the server has answered. */
  roundTrip(frame: Uint8Array, mode: 1 | 2): Promise<void>;
  /** Sends `count` frames back to back; resolves when all are answered. */
  stream(frame: Uint8Array, count: number): Promise<void>;
  close(): void;
}

async function openWs(port: number, zeroMask: boolean): Promise<Channel> {
  // The agent's client options (src/agent/connection.ts).
  const socket = new WebSocket(`ws://127.0.0.1:${port}/agent`, {
    perMessageDeflate: false,
    maxPayload: 512 * 1024 * 1024,
    ...(zeroMask ? { generateMask: (mask: Buffer) => void mask.fill(0) } : {}),
  });
  socket.binaryType = 'nodebuffer';
  const waiting: Array<{ resolve(): void; reject(error: Error): void }> = [];
  let welcomed: (() => void) | null = null;
  socket.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) return;
    const message = JSON.parse(data.toString('utf8')) as { type: string; reason?: string };
    if (message.type === 'welcome') welcomed?.();
    else if (message.type === 'accepted') waiting.shift()?.resolve();
    else if (message.type === 'rejected' || message.type === 'error') waiting.shift()?.reject(new Error(`transport server: ${JSON.stringify(message)}`));
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  await new Promise<void>((resolve) => {
    welcomed = resolve;
    socket.send(JSON.stringify({ v: 1, type: 'hello', name: `bench-${zeroMask ? 'zero' : 'ws'}`, capabilities: { backend: 'bench', device: 'bench', samplesPerSecond: 1, agentVersion: 'bench', hostname: 'bench' } }));
  });
  const send = (frame: Uint8Array, mode: 1 | 2) => {
    new DataView(frame.buffer, frame.byteOffset, 64).setUint32(20, mode, true);
    socket.send(frame, { binary: true });
  };
  return {
    roundTrip(frame, mode) {
      return new Promise<void>((resolve, reject) => {
        waiting.push({ resolve, reject });
        send(frame, mode);
      });
    },
    async stream(frame, count) {
      const done: Promise<void>[] = [];
      for (let i = 0; i < count; i++) done.push(new Promise<void>((resolve, reject) => waiting.push({ resolve, reject })));
      for (let i = 0; i < count; i++) send(frame, 2);
      await Promise.all(done);
    },
    close: () => socket.close(),
  };
}

async function openTcp(port: number): Promise<Channel> {
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = tcpConnect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  socket.setNoDelay(true);
  const waiting: Array<() => void> = [];
  socket.on('data', (chunk: Buffer) => {
    for (let i = 0; i < chunk.length; i++) waiting.shift()?.();
  });
  const send = (frame: Uint8Array, mode: 1 | 2) => {
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32LE(frame.byteLength, 0);
    prefix[4] = mode;
    socket.cork();
    socket.write(prefix);
    socket.write(frame);
    socket.uncork();
  };
  return {
    roundTrip(frame, mode) {
      return new Promise<void>((resolve) => {
        waiting.push(resolve);
        send(frame, mode);
      });
    },
    async stream(frame, count) {
      const done: Promise<void>[] = [];
      for (let i = 0; i < count; i++) done.push(new Promise<void>((resolve) => waiting.push(resolve)));
      for (let i = 0; i < count; i++) send(frame, 2);
      await Promise.all(done);
    },
    close: () => socket.destroy(),
  };
}

export const transport: Benchmark = {
  name: 'transport',
  title: 'Transport: one 4 MB update over the agent WebSocket vs raw TCP on loopback',
  inDefault: true,
  async run({ quick, log }: BenchOptions): Promise<BenchOutcome> {
    const child = spawnTracked(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/lib/transport-server.ts')], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const channels: Channel[] = [];
    try {
      const info = await new Promise<{ wsPort: number; tcpPort: number; bufferutil: boolean }>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (c: Buffer) => {
          out += c.toString();
          const line = out.split('\n')[0];
          if (out.includes('\n')) resolve(JSON.parse(line));
        });
        child.once('exit', (code) => reject(new Error(`transport server exited (${code}): ${stderr.slice(-2000)}`)));
        setTimeout(() => reject(new Error(`transport server did not start: ${stderr.slice(-2000)}`)), 60_000).unref();
      });
      const ws = await openWs(info.wsPort, false);
      const wsZero = await openWs(info.wsPort, true);
      const tcp = await openTcp(info.tcpPort);
      channels.push(ws, wsZero, tcp);

      const gradient = new Float32Array(PARAMS);
      for (let i = 0; i < PARAMS; i++) gradient[i] = (((i * 7919) % 2001) / 1000 - 1) * 1e-3;
      let round = 0;
      const fields = () => ({ kind: FrameKind.Gradient, sessionId: 1, round: ++round, nodeId: 1, attempt: 1, modelVersion: 0, sampleCount: 128, trainLoss: 2.3 });
      const preEncoded = encodeFrame(fields(), gradient);
      const frameBytes = preEncoded.byteLength;
      const run: Record<Variant, () => Promise<void>> = {
        'ws-full': () => ws.roundTrip(encodeFrame(fields(), gradient), 1),
        'tcp-full': () => tcp.roundTrip(encodeFrame(fields(), gradient), 1),
        'ws-transport': () => ws.roundTrip(preEncoded, 2),
        'tcp-transport': () => tcp.roundTrip(preEncoded, 2),
        'ws-zero-mask-full': () => wsZero.roundTrip(encodeFrame(fields(), gradient), 1),
        'ws-zero-mask-transport': () => wsZero.roundTrip(preEncoded, 2),
      };
      const variants = Object.keys(run) as Variant[];
      const times: Record<Variant, number[]> = Object.fromEntries(variants.map((v) => [v, [] as number[]])) as Record<Variant, number[]>;
      const blocks = quick ? 3 : 15;
      const perBlock = 10;
      log(`${variants.length} variants x ${blocks} blocks x ${perBlock} messages of ${fmt(frameBytes / 1e6, 2)} MB (bufferutil ${info.bufferutil ? 'loaded' : 'missing'})`);
      for (const v of variants) for (let i = 0; i < 5; i++) await run[v]();
      for (let b = 0; b < blocks; b++) {
        for (const v of variants) {
          for (let i = 0; i < perBlock; i++) {
            const started = performance.now();
            await run[v]();
            times[v].push(performance.now() - started);
          }
        }
      }
      // Streamed: frames back to back, the rate the link sustains.
      const streamCount = quick ? 10 : 50;
      const streamed: Record<'ws' | 'tcp', number[]> = { ws: [], tcp: [] };
      for (let rep = 0; rep < (quick ? 2 : 5); rep++) {
        for (const [name, channel] of [['ws', ws], ['tcp', tcp]] as const) {
          const started = performance.now();
          await channel.stream(preEncoded, streamCount);
          streamed[name].push(performance.now() - started);
        }
      }

      const mbps = (ms: number) => frameBytes / 1e6 / (ms / 1000);
      const stats = Object.fromEntries(
        variants.map((v) => [v, { p50: median(times[v]), p95: percentile(times[v], 95), p99: percentile(times[v], 99), n: times[v].length, mbPerS: mbps(median(times[v])) }]),
      ) as Record<Variant, { p50: number; p95: number; p99: number; n: number; mbPerS: number }>;
      const fullRatio = stats['tcp-full'].p50 / stats['ws-full'].p50;
      const transportRatio = stats['tcp-transport'].p50 / stats['ws-transport'].p50;
      const streamMbps = { ws: (streamCount * frameBytes) / 1e6 / (median(streamed.ws) / 1000), tcp: (streamCount * frameBytes) / 1e6 / (median(streamed.tcp) / 1000) };
      const desc = (v: Variant) => `${fmt(stats[v].mbPerS, 0)} MB/s, p50 ${fmtMs(stats[v].p50)}, p95 ${fmtMs(stats[v].p95)}`;
      const rows = [
        row('ws: encode + send + receive + decode, 4 MB', desc('ws-full'), stats['ws-full'].mbPerS, 'MB/s', '', undefined, `raw TCP, same bytes and codec: ${desc('tcp-full')}`),
        row('ws vs raw TCP (full path, p50 rate)', `${fmt(fullRatio * 100, 1)}%`, fullRatio * 100, '%', '>= 70% of raw TCP', atLeast(fullRatio * 100, 70, ' points')),
        row(
          'ws vs raw TCP (transport only, p50 rate)',
          `${fmt(transportRatio * 100, 1)}%`,
          transportRatio * 100,
          '%',
          '>= 70% of raw TCP',
          atLeast(transportRatio * 100, 70, ' points'),
          `ws ${desc('ws-transport')}; TCP ${desc('tcp-transport')}`,
        ),
        row(
          'streamed, 4 MB frames back to back',
          `ws ${fmt(streamMbps.ws, 0)} MB/s, TCP ${fmt(streamMbps.tcp, 0)} MB/s (${fmt((streamMbps.ws / streamMbps.tcp) * 100, 0)}%)`,
          streamMbps.ws,
          'MB/s',
        ),
        row(
          'ws with a zero masking key (analysis)',
          desc('ws-zero-mask-full'),
          stats['ws-zero-mask-full'].mbPerS,
          'MB/s',
          '',
          undefined,
          `${fmt((stats['tcp-full'].p50 / stats['ws-zero-mask-full'].p50) * 100, 0)}% of raw TCP; transport only ${fmt(stats['ws-zero-mask-transport'].mbPerS, 0)} MB/s = ${fmt((stats['tcp-transport'].p50 / stats['ws-zero-mask-transport'].p50) * 100, 0)}% of raw TCP`,
        ),
      ];
      return {
        rows,
        notes: [
          `Client: this process with the agent's ws options (perMessageDeflate off); server: a separate process running the product's agent gateway (src/server/adapters/agent-gateway.ts) with a stand-in coordinator; bufferutil ${info.bufferutil ? 'loaded' : 'NOT loaded'}. Frame: ${frameBytes} bytes (64-byte header + 1M float32).`,
          'Latency = start of encoding to the server\'s answer (a small JSON `accepted` for ws, one byte for TCP); MB/s = frame bytes / p50 latency. Raw TCP carries the same frame with a 5-byte length prefix into one buffer and decodes it the same way (decodeFrameInto into an aggregator-pool slot, inspected by the pool\'s kernel).',
        ],
        details: { frameBytes, bufferutil: info.bufferutil, stats, streamed: { count: streamCount, msPerBatch: streamed, mbPerS: streamMbps }, samplesMs: times },
      };
    } finally {
      for (const c of channels) c.close();
      await stopChild(child, 'SIGTERM', 3000);
    }
  },
};
