// A rogue client on the agent channel: it joins the session like an agent, delivers one valid update for
// its assignment, then replays that exact frame (while the round is open, after it closed, and from a new
// connection under the same name). Every replay must be rejected with a reason and recorded; the update
// must be applied exactly once. Frames are built as in tests/integration/agent-channel.test.ts.
import WebSocket from 'ws';
import type { Assignment } from '../../../src/server/core/types';
import { encodeFrame, FrameKind } from '../../../src/protocol/frame';
import type { CoordinatorApi } from './api';

interface Client {
  ws: WebSocket;
  closed: Promise<{ code: number; reason: string }>;
  /** The next text message (after the last one returned) that matches. */
  next(match: string | ((m: any) => boolean), timeoutMs?: number): Promise<any>;
}

async function connect(url: string): Promise<Client> {
  const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 5000 });
  const messages: any[] = [];
  let seen = 0;
  const waiters: (() => void)[] = [];
  ws.on('message', (data: Buffer, isBinary) => {
    if (!isBinary) messages.push(JSON.parse(data.toString()));
    waiters.splice(0).forEach((w) => w());
  });
  ws.on('error', () => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      waiters.splice(0).forEach((w) => w());
    }),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    closed,
    async next(match, timeoutMs = 15_000) {
      const accept = typeof match === 'string' ? (m: any) => m.type === match : match;
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const index = messages.findIndex((m, i) => i >= seen && accept(m));
        if (index >= 0) {
          seen = index + 1;
          return messages[index];
        }
        if (ws.readyState !== WebSocket.OPEN) throw new Error(`rogue client: connection closed while waiting; got ${JSON.stringify(messages.slice(seen)).slice(0, 500)}`);
        if (Date.now() > deadline) throw new Error(`rogue client: nothing matching within ${timeoutMs} ms; got ${JSON.stringify(messages.slice(seen)).slice(0, 500)}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
    },
  };
}

const hello = (name: string, token?: string) =>
  JSON.stringify({ v: 1, type: 'hello', name, capabilities: { backend: 'chaos', device: 'rogue client', samplesPerSecond: 1000, agentVersion: 'chaos', hostname: 'chaos' }, ...(token ? { token } : {}) });

export interface RogueReport {
  nodeId: number;
  round: number;
  samples: number;
  /** The coordinator's answer to the first (valid) delivery. */
  first: { type: string; code?: string };
  /** Answers to the replays, by when they were sent. */
  replays: { phase: 'same connection' | 'new connection' | 'round closed'; roundOpen: boolean | null; type: string; code?: string; reason?: string }[];
}

/** Runs the rogue against the coordinator's agent endpoint; leaves (goodbye) when done. */
export async function runRogue(agentUrl: string, api: CoordinatorApi, name = 'chaos-rogue', heartbeatMs = 100): Promise<RogueReport> {
  const beat = (c: Client) => setInterval(() => c.ws.readyState === WebSocket.OPEN && c.ws.send(JSON.stringify({ v: 1, type: 'heartbeat', at: Date.now(), round: null })), heartbeatMs);
  const first = await connect(agentUrl);
  let timer = beat(first);
  let second: Client | null = null;
  try {
    first.ws.send(hello(name));
    const welcome = await first.next('welcome');
    const nodeId = welcome.nodeId as number;
    const session = welcome.session;
    if (!session) throw new Error('rogue client: no session is running');
    first.ws.send(JSON.stringify({ v: 1, type: 'ready', sessionId: session.sessionId }));
    const { assignment } = (await first.next('assignment')) as { assignment: Assignment };
    const frame = encodeFrame(
      {
        kind: FrameKind.Gradient,
        sessionId: assignment.sessionId,
        round: assignment.round,
        nodeId: assignment.nodeId,
        attempt: assignment.attempt,
        modelVersion: assignment.modelVersion,
        sampleCount: assignment.shardCount,
        trainLoss: 2.3,
      },
      // A valid, harmless update: a zero gradient (finite, right size, right checksum).
      new Float32Array(session.paramCount),
    );
    const answer = (c: Client) => c.next((m) => m.type === 'accepted' || m.type === 'rejected');
    const report: RogueReport = { nodeId, round: assignment.round, samples: assignment.shardCount, first: { type: '' }, replays: [] };
    /** Whether the round has not been applied yet (the last closed round is before it): null if unknown. */
    const roundOpen = async () => {
      const status = await api.status().catch(() => null);
      return status ? status.round < assignment.round : null;
    };
    first.ws.send(frame);
    const a = await answer(first);
    report.first = { type: a.type, code: a.code };
    // The same bytes again at once, on the same connection: the round is most likely still collecting.
    let open = await roundOpen();
    first.ws.send(frame);
    const b = await answer(first);
    report.replays.push({ phase: 'same connection', roundOpen: open, type: b.type, code: b.code, reason: b.reason });
    // A reconnect replaying what it sent before (an agent that never saw its ack), at once: a new connection
    // under the same name, with the token the coordinator issued at the first hello.
    clearInterval(timer);
    second = await connect(agentUrl);
    timer = beat(second);
    second.ws.send(hello(name, welcome.token));
    const again = await second.next('welcome');
    if (again.nodeId !== nodeId) throw new Error(`rogue client: reconnected as node ${again.nodeId}, expected ${nodeId}`);
    open = await roundOpen();
    second.ws.send(frame);
    const c = await answer(second);
    report.replays.push({ phase: 'new connection', roundOpen: open, type: c.type, code: c.code, reason: c.reason });
    // And once the round has been closed and applied.
    const deadline = Date.now() + 20_000;
    while ((await roundOpen()) !== false && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    second.ws.send(frame);
    const d = await answer(second);
    report.replays.push({ phase: 'round closed', roundOpen: false, type: d.type, code: d.code, reason: d.reason });
    second.ws.send(JSON.stringify({ v: 1, type: 'goodbye', reason: 'rogue client done' }));
    return report;
  } finally {
    clearInterval(timer);
    first.ws.terminate();
    if (second) {
      const s = second;
      await Promise.race([s.closed, new Promise((resolve) => setTimeout(resolve, 500))]);
      s.ws.terminate();
    }
  }
}
