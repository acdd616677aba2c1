// Live: latency from an event in the coordinator to a client subscribed to the dashboard feed (tRPC
// subscription `live.dashboard` over the WebSocket at /trpc-ws, @trpc/client's wsLink with the `ws` package),
// while a session trains with 2 real agents. The server stamps its events with its own clock (epoch ms; the
// same clock as this process on this machine): status.now and log.at / timeline.at are taken just before the
// event is published; metric.at is the moment the round closed, before its database transaction, so its
// latency also holds the round's bookkeeping.
//   npm run bench -- live                  (about 20 s)
import { createTRPCClient, createWSClient, wsLink } from '@trpc/client';
import WebSocket from 'ws';
import type { AppRouter } from '../src/server/api/root';
import type { LiveMessage } from '../src/server/api/dto';
import { below, epochMs, fmtMs, row, sleep, summarize, type BenchOptions, type BenchOutcome, type Benchmark, type Row } from './lib/common';
import { spawnAgent, startServer, startSession, waitForNodes, type AgentHandle, type ServerHandle } from './lib/procs';
import { warmUp } from './lib/training';

type Kind = 'status' | 'log+timeline' | 'metric';

export const live: Benchmark = {
  name: 'live',
  title: 'Live: coordinator event to a subscribed dashboard client (tRPC over WebSocket)',
  inDefault: true,
  async run({ quick, log }: BenchOptions): Promise<BenchOutcome> {
    const seconds = quick ? 3 : 10;
    let server: ServerHandle | null = null;
    const agents: AgentHandle[] = [];
    let wsClient: ReturnType<typeof createWSClient> | null = null;
    let unsubscribe: (() => void) | null = null;
    try {
      server = await startServer();
      for (let i = 1; i <= 2; i++) agents.push(spawnAgent(server.agentUrl, `live-${i}`));
      await waitForNodes(server, agents.map((a) => a.name));
      await startSession(server, { model: 'mlp', batchSize: 128 });
      await warmUp(server, 20, 2000);

      const latencies: Record<Kind, number[]> = { status: [], 'log+timeline': [], metric: [] };
      let recording = false;
      let received = 0;
      let snapshot = false;
      wsClient = createWSClient({ url: `ws://127.0.0.1:${server.port}/trpc-ws`, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket });
      const client = createTRPCClient<AppRouter>({ links: [wsLink({ client: wsClient })] });
      const subscription = client.live.dashboard.subscribe(undefined, {
        onData(message: LiveMessage) {
          const now = epochMs();
          received++;
          if (message.type === 'snapshot') {
            snapshot = true;
            return;
          }
          if (!recording) return;
          if (message.type === 'status') latencies.status.push(now - message.status.now);
          else if (message.type === 'log') latencies['log+timeline'].push(now - message.line.at);
          else if (message.type === 'timeline') latencies['log+timeline'].push(now - message.event.at);
          else if (message.type === 'metric' && message.metric.testAccuracy === null) latencies.metric.push(now - message.metric.at);
        },
        onError(error: unknown) {
          log(`subscription error: ${error instanceof Error ? error.message : String(error)}`);
        },
      });
      unsubscribe = () => subscription.unsubscribe();
      const subscribedAt = Date.now();
      while (!snapshot) {
        if (Date.now() - subscribedAt > 30_000) throw new Error('no snapshot from live.dashboard within 30 s');
        await sleep(50);
      }
      await sleep(1000);
      log(`subscribed; recording ${seconds} s of events...`);
      recording = true;
      await sleep(seconds * 1000);
      recording = false;

      const status = summarize(latencies.status);
      const logs = summarize(latencies['log+timeline']);
      const metric = summarize(latencies.metric);
      const all = summarize([...latencies.status, ...latencies['log+timeline']]);
      log(`${received} messages; status events p50 ${fmtMs(status.p50)} p95 ${fmtMs(status.p95)}`);
      const rows: Row[] = [
        row('status events (status.now -> client)', `p50 ${fmtMs(status.p50)}, p95 ${fmtMs(status.p95)}, p99 ${fmtMs(status.p99)}`, status.p95, 'ms (p95)', 'p95 < 10 ms', below(status.p95, 10, ' ms'), `${status.n} events, max ${fmtMs(status.max)}`),
        row(
          'log and timeline events (at -> client)',
          logs.n ? `p50 ${fmtMs(logs.p50)}, p95 ${fmtMs(logs.p95)}, p99 ${fmtMs(logs.p99)}` : 'none seen',
          logs.n ? logs.p95 : null,
          'ms (p95)',
          'p95 < 10 ms',
          logs.n ? below(logs.p95, 10, ' ms') : { verdict: 'skipped' },
          `${logs.n} events`,
        ),
        row('all publish-stamped events', `p50 ${fmtMs(all.p50)}, p95 ${fmtMs(all.p95)}, p99 ${fmtMs(all.p99)}`, all.p95, 'ms (p95)', 'p95 < 10 ms', below(all.p95, 10, ' ms'), `${all.n} events`),
        row('round close -> metric event at client (analysis)', `p50 ${fmtMs(metric.p50)}, p95 ${fmtMs(metric.p95)}, p99 ${fmtMs(metric.p99)}`, metric.p95, 'ms (p95)', '', undefined, `${metric.n} events; includes the round's SQLite transaction before the event is published`),
      ];
      return {
        rows,
        notes: [
          `One subscriber (this process, @trpc/client wsLink over the \`ws\` package) while 2 real agents train; ${seconds} s of events after the snapshot. Server stamps are integer milliseconds (Date.now()), the receive time is sub-millisecond on the same clock, so each latency reads up to 1 ms high (0.5 ms on average).`,
        ],
        details: { seconds, messages: received, status, logAndTimeline: logs, metric, allPublishStamped: all, rawMs: latencies, subscribers: 1 },
      };
    } finally {
      unsubscribe?.();
      wsClient?.close();
      await Promise.all(agents.map((a) => a.stop()));
      await server?.stop();
    }
  },
};
