// Failure detection: how long after a real agent dies the coordinator shows it failed (GET /api/nodes), from
// the node's statusChangedAt (server epoch ms: the moment of detection) minus the moment the signal was sent
// (same clock). Two ways to die, while a session trains:
//   closed: kill -9 (the kernel closes the TCP connection; the server sees the socket close)
//   silent: SIGSTOP (the connection stays open and says nothing; the heartbeat sweep has to notice)
// Each closed trial kills a fresh agent; each silent trial stops the same agent, then continues it and waits
// for it to reconnect. Server heartbeat settings: its defaults (HYPERGPU_HEARTBEAT_MS 200, timeout 800 ms).
//   npm run bench -- detection             (about 45 s)
import { below, fmt, fmtMs, percentile, row, sleep, summarize, waitFor, type BenchOptions, type BenchOutcome, type Benchmark } from './lib/common';
import { getJson, spawnAgent, startServer, startSession, waitForNodes, type AgentHandle, type ServerHandle } from './lib/procs';
import { warmUp } from './lib/training';

interface Trial {
  kind: 'closed' | 'silent';
  name: string;
  signalAt: number;
  detectedAt: number;
  ms: number;
  reason: string;
  /** closed: when this process saw the killed agent exit (the kernel has torn it down, sockets included). */
  exitSeenMs?: number;
}

async function nodeByName(server: ServerHandle, name: string): Promise<any> {
  const nodes = (await getJson(`${server.baseUrl}/api/nodes`)).nodes as any[];
  return nodes.find((n) => n.name === name);
}

async function waitForFailure(server: ServerHandle, name: string, after: number): Promise<any> {
  return waitFor(() => nodeByName(server, name), (n) => n?.status === 'failed' && n.statusChangedAt >= after - 1, 15_000, `${name} to be failed`, 20);
}

export const detection: Benchmark = {
  name: 'detection',
  title: 'Failure detection: kill -9 (connection closed) and SIGSTOP (silent) of a real agent',
  inDefault: true,
  async run({ quick, log }: BenchOptions): Promise<BenchOutcome> {
    const trialsPerKind = quick ? 2 : 10;
    let server: ServerHandle | null = null;
    const agents: AgentHandle[] = [];
    const trials: Trial[] = [];
    try {
      server = await startServer();
      const background = spawnAgent(server.agentUrl, 'det-background');
      const sleeper = spawnAgent(server.agentUrl, 'det-silent');
      agents.push(background, sleeper);
      await waitForNodes(server, [background.name, sleeper.name]);
      await startSession(server, { model: 'mlp', batchSize: 128 });
      await warmUp(server, 10, 1000);

      log(`${trialsPerKind} kill -9 trials (a fresh agent each)...`);
      for (let i = 1; i <= trialsPerKind; i++) {
        const victim = spawnAgent(server.agentUrl, `det-kill-${i}`);
        agents.push(victim);
        await waitForNodes(server, [victim.name]);
        // Let it take part in a few rounds, then kill it at a random moment of its cycle.
        await sleep(700 + Math.random() * 300);
        const exited = new Promise<number>((resolve) => victim.child.once('exit', () => resolve(Date.now())));
        const signalAt = Date.now();
        victim.child.kill('SIGKILL');
        const node = await waitForFailure(server, victim.name, signalAt);
        const exitSeenAt = await exited;
        trials.push({ kind: 'closed', name: victim.name, signalAt, detectedAt: node.statusChangedAt, ms: node.statusChangedAt - signalAt, reason: node.statusReason, exitSeenMs: exitSeenAt - signalAt });
      }

      log(`${trialsPerKind} SIGSTOP trials...`);
      for (let i = 1; i <= trialsPerKind; i++) {
        await waitForNodes(server, [sleeper.name]);
        await sleep(500 + Math.random() * 500);
        const signalAt = Date.now();
        sleeper.child.kill('SIGSTOP');
        let node: any;
        try {
          node = await waitForFailure(server, sleeper.name, signalAt);
        } finally {
          sleeper.child.kill('SIGCONT');
        }
        trials.push({ kind: 'silent', name: sleeper.name, signalAt, detectedAt: node.statusChangedAt, ms: node.statusChangedAt - signalAt, reason: node.statusReason });
      }
    } finally {
      for (const a of agents) a.child.kill('SIGKILL');
      await server?.stop();
    }

    const closed = trials.filter((t) => t.kind === 'closed').map((t) => t.ms);
    const silent = trials.filter((t) => t.kind === 'silent').map((t) => t.ms);
    const c = summarize(closed);
    const exitSeen = summarize(trials.filter((t) => t.kind === 'closed').map((t) => t.exitSeenMs ?? Number.NaN));
    const s = summarize(silent);
    log(`closed: p50 ${fmtMs(c.p50)} max ${fmtMs(c.max)}; silent: p50 ${fmtMs(s.p50)} max ${fmtMs(s.max)}`);
    const p99Note = (n: number) => `p99 of ${n} trials is interpolated between the two largest`;
    return {
      rows: [
        row('closed connection (kill -9)', `p50 ${fmtMs(c.p50)}, p99 ${fmtMs(c.p99)} (max ${fmtMs(c.max)})`, c.p99, 'ms (p99)', 'p99 < 100 ms', below(c.p99, 100, ' ms'), `${c.n} trials; the killed process was reaped (its 'exit' seen here) after p50 ${fmtMs(exitSeen.p50)}`),
        row(
          'silent (SIGSTOP)',
          `p50 ${fmtMs(s.p50)}, p99 ${fmtMs(s.p99)} (max ${fmtMs(s.max)})`,
          s.p99,
          'ms (p99)',
          'p99 < 1 s',
          below(s.p99, 1000, ' ms'),
          `${s.n} trials; heartbeat 200 ms, timeout 800 ms, sweep every 80 ms: expected 600-880 ms`,
        ),
      ],
      notes: [
        `Detection time = node.statusChangedAt (set by the server when it marks the node failed) - the time the signal was sent, both epoch ms on the same machine clock; ${p99Note(trialsPerKind)}. A session trains with 2 agents plus the victim throughout. Closed: a fresh agent per trial, killed 0.7-1 s after it connected. Silent: one agent stopped, then continued; it reconnects before the next trial.`,
      ],
      details: {
        trials,
        closed: { ...c, p90: percentile(closed, 90), exitSeen },
        silent: { ...s, p90: percentile(silent, 90) },
        reasons: [...new Set(trials.map((t) => `${t.kind}: ${t.reason.replace(/\d+ ms/g, 'N ms')}`))],
        heartbeat: { intervalMs: 200, timeoutMs: 800, summary: `${fmt(s.p50, 0)} ms median silent detection` },
      },
    };
  },
};
