// One chaos run's cluster: the real coordinator and N real agents as child processes, each agent optionally
// behind its own fault proxy, plus the operations scenarios use to hurt them (kill, stop, partition, slow
// down, crash the coordinator) and to wait on the system's state through its REST API.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createFaultProxy, type FaultProxy } from '../fault-proxy';
import { CoordinatorApi, optional, type NodeInfo, type StatusResponse } from './api';
import { killHard, spawnNode, type ManagedProcess } from './processes';
import { serverEntry, TEST_ADMIN_TOKEN } from '../server-process';
import { SERVER_ENV, SERVER_NODE_FLAGS } from '../../../src/server/node-flags';

export interface ClusterConfig {
  agents: number;
  seed: number;
  /** Sample budget: the session completes once this many samples were applied. */
  maxSamples: number;
  batchSize: number;
  evalEvery: number;
  checkpointEvery: number;
  heartbeatMs: number;
  heartbeatTimeoutMs: number;
  /** Every agent connects through its own fault proxy (needed for partitions and latency). */
  proxied: boolean;
  /**
   * Hold the session paused until every agent has loaded the session, then resume: every run then starts
   * with all agents in round 1, which makes undisturbed runs repeatable.
   */
  alignedStart: boolean;
  /** Echo every child's output. */
  verbose: boolean;
  /** Keep the data directory after the run (for inspection). */
  keepDataDir: boolean;
  log: (line: string) => void;
}

export const DEFAULT_CLUSTER_CONFIG: ClusterConfig = {
  agents: 4,
  seed: 7,
  maxSamples: 48_000,
  batchSize: 64,
  evalEvery: 20,
  checkpointEvery: 5,
  heartbeatMs: 100,
  heartbeatTimeoutMs: 700,
  proxied: true,
  alignedStart: true,
  verbose: false,
  keepDataDir: false,
  log: () => undefined,
};

/** What the harness did to the system, when (harness clock, epoch ms). */
export interface Injection {
  at: number;
  action: 'sigkill' | 'sigstop' | 'sigcont' | 'blackhole' | 'heal' | 'latency' | 'agent-start' | 'server-kill' | 'server-start' | 'rogue';
  agent?: number;
  nodeId?: number | null;
  /** How the coordinator should notice it: a closed connection or a silent node. */
  expect?: 'closed' | 'silent';
  note?: string;
}

export interface NodeTransition {
  observedAt: number;
  nodeId: number;
  name: string;
  status: NodeInfo['status'];
  reason: string | null;
  statusChangedAt: number | null;
  lastHeartbeatAt: number;
}

export interface StatusSample {
  at: number;
  state: StatusResponse['state'];
  round: number;
  modelVersion: number;
  totalSamples: number;
  training: number;
}

export interface AgentHandle {
  index: number;
  name: string;
  proxy: FaultProxy | null;
  process: ManagedProcess | null;
  /** Every process this agent slot ran (restarts add one). */
  history: ManagedProcess[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export class TimeoutError extends Error {}

export class ChaosCluster {
  readonly api: CoordinatorApi;
  readonly agents: AgentHandle[] = [];
  readonly injections: Injection[] = [];
  readonly transitions: NodeTransition[] = [];
  readonly statusSamples: StatusSample[] = [];
  readonly servers: ManagedProcess[] = [];
  server: ManagedProcess | null = null;
  sessionId: number | null = null;
  /** When training started for everyone (the aligned start's resume), epoch ms. */
  trainingStartedAt = 0;
  private readonly lastNodes = new Map<number, NodeInfo>();
  private lastStatus: StatusResponse | null = null;
  private watcher: NodeJS.Timeout | null = null;
  private watching = false;
  private closed = false;
  private readonly deadline: number;

  private constructor(
    readonly config: ClusterConfig,
    readonly port: number,
    readonly dataDir: string,
    /** Operations give up (TimeoutError) past this point; the run's hard time limit. */
    deadlineMs: number,
    /** The server entry file (the bundled .build/server/main.mjs). */
    private readonly serverEntry: string,
  ) {
    this.api = new CoordinatorApi(`http://127.0.0.1:${port}`);
    this.deadline = Date.now() + deadlineMs;
  }

  /** Starts the coordinator and the agents; on any failure everything started so far is cleaned up. */
  static async start(config: ClusterConfig, deadlineMs = 120_000): Promise<ChaosCluster> {
    const port = await freePort();
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hypergpu-chaos-'));
    // The coordinator runs as `npm start` runs it: the bundle (built here when the sources changed).
    const cluster = new ChaosCluster(config, port, dataDir, deadlineMs, await serverEntry());
    try {
      await cluster.boot();
      return cluster;
    } catch (error) {
      await cluster.close();
      throw error;
    }
  }

  private log(line: string): void {
    this.config.log(line);
  }

  // ------------------------------------------------------------------ coordinator

  private serverArgs(fresh: boolean): string[] {
    const c = this.config;
    return [
      ...SERVER_NODE_FLAGS,
      this.serverEntry,
      '--no-dashboard',
      '--nodes', '0',
      '--port', String(this.port),
      '--host', '127.0.0.1',
      '--data-dir', this.dataDir,
      ...(fresh ? ['--fresh'] : []),
      '--seed', String(c.seed),
      '--max-samples', String(c.maxSamples),
      '--batch-size', String(c.batchSize),
      '--eval-every', String(c.evalEvery),
      '--checkpoint-every', String(c.checkpointEvery),
    ];
  }

  private spawnServer(fresh: boolean): ManagedProcess {
    const generation = this.servers.length + 1;
    const server = spawnNode({
      label: `server#${generation}`,
      args: this.serverArgs(fresh),
      // The chaos harness tests failures, not admission: its agents and rogues join an opened pool.
      env: {
        ...SERVER_ENV,
        HYPERGPU_HEARTBEAT_MS: String(this.config.heartbeatMs),
        HYPERGPU_HEARTBEAT_TIMEOUT_MS: String(this.config.heartbeatTimeoutMs),
        HYPERGPU_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
        HYPERGPU_OPEN_POOL: '1',
        // Rogues and honest agents share 127.0.0.1 here: an address ban would lock the honest ones out too.
        HYPERGPU_AGENT_OFFENDER_STRIKES: '1000000',
      },
      echo: this.config.verbose ? (line) => this.log(line) : undefined,
    });
    this.servers.push(server);
    this.server = server;
    this.injections.push({ at: Date.now(), action: 'server-start', note: fresh ? 'fresh' : 'restart' });
    return server;
  }

  private async waitForServerUp(server: ManagedProcess): Promise<void> {
    await this.until(
      'the coordinator to answer /health',
      async () => {
        if (!server.alive()) throw new Error(`coordinator exited during start:\n${server.tail()}`);
        return this.api.healthy();
      },
      (ok) => ok,
      60_000,
      100,
    );
  }

  private async boot(): Promise<void> {
    const c = this.config;
    this.log(`coordinator on port ${this.port}, data in ${this.dataDir}`);
    const server = this.spawnServer(true);
    await this.waitForServerUp(server);
    const status = await this.until('the session to start', () => optional(() => this.api.status()), (s) => !!s && s.sessionId !== null && s.state === 'running', 30_000);
    this.sessionId = status!.sessionId;
    if (c.alignedStart) await this.api.pause();
    this.startWatcher();
    for (let i = 0; i < c.agents; i++) {
      const proxy = c.proxied ? await createFaultProxy({ targetPort: this.port }) : null;
      this.agents.push({ index: i, name: `chaos-${i + 1}`, proxy, process: null, history: [] });
    }
    const since = Date.now();
    for (const agent of this.agents) this.spawnAgent(agent.index);
    await this.waitForAgentsReady(this.agents.map((a) => a.index), since, 90_000);
    if (c.alignedStart) {
      // 'ready' goes out right after the agent prints it; give the coordinator a moment to read it.
      await sleep(300);
      await this.api.resume();
    }
    this.trainingStartedAt = Date.now();
    this.log(`${c.agents} agents ready; training (session ${this.sessionId})`);
  }

  /** kill -9 the coordinator. */
  async killServer(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.injections.push({ at: Date.now(), action: 'server-kill' });
    this.log('kill -9 coordinator');
    await killHard(server);
    this.server = null;
  }

  /** Starts the coordinator again on the same port and data directory, resuming the interrupted session. */
  async restartServer(): Promise<void> {
    if (this.server?.alive()) throw new Error('the coordinator is still running');
    this.log('restarting coordinator');
    const server = this.spawnServer(false);
    await this.waitForServerUp(server);
    // It listens before it has recovered the session: wait for the session to be back.
    await this.until('the interrupted session to be resumed', () => optional(() => this.api.status()), (s) => !!s && s.sessionId !== null && s.state !== 'idle', 60_000);
  }

  // ------------------------------------------------------------------ agents

  private agentUrl(agent: AgentHandle): string {
    return `ws://127.0.0.1:${agent.proxy ? agent.proxy.port : this.port}/agent`;
  }

  spawnAgent(index: number): ManagedProcess {
    const agent = this.agents[index];
    if (agent.process?.alive()) throw new Error(`${agent.name} is already running`);
    const p = spawnNode({
      label: agent.name,
      // Tokens (which make a node name the agent's own) stay in the run's directory, not in ~/.hypergpu.
      args: ['src/agent/cli.ts', '--coordinator', this.agentUrl(agent), '--name', agent.name, '--state-dir', path.join(this.dataDir, 'agents')],
      echo: this.config.verbose ? (line) => this.log(line) : undefined,
    });
    agent.process = p;
    agent.history.push(p);
    this.injections.push({ at: Date.now(), action: 'agent-start', agent: index, nodeId: this.nodeIdOf(index) });
    return p;
  }

  /** Starts a killed agent again under the same name and waits until it is back in the session. */
  async restartAgent(index: number, timeoutMs = 60_000): Promise<void> {
    const since = Date.now();
    this.log(`restarting ${this.agents[index].name}`);
    this.spawnAgent(index);
    await this.waitForAgentsReady([index], since, timeoutMs);
  }

  /** Waits until each agent printed that it is ready for the session and the coordinator lists it as live. */
  async waitForAgentsReady(indices: number[], since: number, timeoutMs: number): Promise<void> {
    await Promise.all(
      indices.map((i) => {
        const p = this.agents[i].process;
        if (!p) throw new Error(`${this.agents[i].name} is not running`);
        return p.waitForLine(/ready for session/, { since, timeoutMs: Math.min(timeoutMs, this.remaining()) });
      }),
    );
    await this.waitForNodes(indices, (n) => n.status === 'idle' || n.status === 'training', `${indices.map((i) => this.agents[i].name).join(', ')} to be live`, timeoutMs, since);
  }

  nodeIdOf(index: number): number | null {
    const name = this.agents[index]?.name;
    for (const node of this.lastNodes.values()) if (node.name === name) return node.id;
    return null;
  }

  agentIndexOf(nodeId: number): number | null {
    const node = this.lastNodes.get(nodeId);
    if (!node) return null;
    const agent = this.agents.find((a) => a.name === node.name);
    return agent ? agent.index : null;
  }

  /** Sends a signal to an agent and records it. SIGKILL and SIGSTOP are failures the coordinator must detect. */
  signalAgent(index: number, signal: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT'): Injection {
    const agent = this.agents[index];
    const p = agent.process;
    if (!p?.alive()) throw new Error(`${agent.name} is not running`);
    const injection: Injection = {
      at: Date.now(),
      action: signal === 'SIGKILL' ? 'sigkill' : signal === 'SIGSTOP' ? 'sigstop' : 'sigcont',
      agent: index,
      nodeId: this.nodeIdOf(index),
      expect: signal === 'SIGKILL' ? 'closed' : signal === 'SIGSTOP' ? 'silent' : undefined,
    };
    p.signal(signal);
    this.injections.push(injection);
    this.log(`${signal} ${agent.name} (node #${injection.nodeId})`);
    return injection;
  }

  async killAgent(index: number): Promise<Injection> {
    const p = this.agents[index].process;
    const injection = this.signalAgent(index, 'SIGKILL');
    if (p) await Promise.race([p.exited, sleep(5000)]);
    return injection;
  }

  /** Blackholes the agents' links (a partition: sockets stay open, nothing gets through). */
  partition(indices: number[]): Injection[] {
    return indices.map((index) => {
      const proxy = this.requireProxy(index);
      const injection: Injection = { at: Date.now(), action: 'blackhole', agent: index, nodeId: this.nodeIdOf(index), expect: 'silent' };
      proxy.setMode('blackhole');
      this.injections.push(injection);
      this.log(`partition ${this.agents[index].name} (node #${injection.nodeId})`);
      return injection;
    });
  }

  heal(indices: number[]): void {
    for (const index of indices) {
      this.requireProxy(index).heal();
      this.injections.push({ at: Date.now(), action: 'heal', agent: index, nodeId: this.nodeIdOf(index) });
      this.log(`heal ${this.agents[index].name}`);
    }
  }

  setLatency(index: number, ms: number): void {
    this.requireProxy(index).setLatency(ms);
    this.injections.push({ at: Date.now(), action: 'latency', agent: index, nodeId: this.nodeIdOf(index), note: `${ms} ms one way` });
    this.log(`${this.agents[index].name}: ${ms} ms one-way latency`);
  }

  private requireProxy(index: number): FaultProxy {
    const proxy = this.agents[index].proxy;
    if (!proxy) throw new Error(`${this.agents[index].name} has no fault proxy (run with proxied agents)`);
    return proxy;
  }

  // ------------------------------------------------------------------ watching and waiting

  /** Polls status and nodes in the background, keeping every status change it sees. */
  private startWatcher(intervalMs = 100): void {
    const tick = async () => {
      if (this.closed) return;
      if (!this.watching) {
        this.watching = true;
        try {
          await this.sample();
        } finally {
          this.watching = false;
        }
      }
      if (!this.closed) this.watcher = setTimeout(() => void tick(), intervalMs);
    };
    void tick();
  }

  /** One poll of /api/status and /api/nodes, recorded; null where the coordinator did not answer. */
  async sample(): Promise<{ status: StatusResponse | null; nodes: NodeInfo[] | null }> {
    const [status, nodes] = await Promise.all([optional(() => this.api.status()), optional(() => this.api.nodes())]);
    const at = Date.now();
    if (status) {
      this.lastStatus = status;
      this.statusSamples.push({
        at,
        state: status.state,
        round: status.round,
        modelVersion: status.modelVersion,
        totalSamples: status.session?.totalSamples ?? 0,
        training: status.nodes?.training ?? 0,
      });
    }
    if (nodes) this.recordNodes(nodes, at);
    return { status, nodes };
  }

  private recordNodes(nodes: NodeInfo[], at: number): void {
    for (const node of nodes) {
      const previous = this.lastNodes.get(node.id);
      const changed =
        !previous ||
        previous.status !== node.status ||
        (node.statusChangedAt !== undefined && previous.statusChangedAt !== node.statusChangedAt);
      if (changed) {
        this.transitions.push({
          observedAt: at,
          nodeId: node.id,
          name: node.name,
          status: node.status,
          reason: node.statusReason,
          statusChangedAt: typeof node.statusChangedAt === 'number' ? node.statusChangedAt : null,
          lastHeartbeatAt: node.lastHeartbeatAt,
        });
      }
      this.lastNodes.set(node.id, node);
    }
  }

  latestStatus(): StatusResponse | null {
    return this.lastStatus;
  }

  latestNodes(): NodeInfo[] {
    return [...this.lastNodes.values()];
  }

  remaining(): number {
    return Math.max(0, this.deadline - Date.now());
  }

  /** Polls until `accept` holds; bounded by `timeoutMs` and by the run's deadline. */
  async until<T>(what: string, probe: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
    const limit = Math.min(timeoutMs, this.remaining());
    const deadline = Date.now() + limit;
    let last: T | undefined;
    for (;;) {
      if (this.closed) throw new Error(`cluster closed while waiting for ${what}`);
      last = await probe();
      if (accept(last)) return last;
      if (Date.now() > deadline) {
        const overall = limit < timeoutMs ? ' (the run hit its time limit)' : '';
        throw new TimeoutError(`timed out after ${limit} ms waiting for ${what}${overall}; last: ${JSON.stringify(last)?.slice(0, 400)}`);
      }
      await sleep(intervalMs);
    }
  }

  async status(): Promise<StatusResponse> {
    return (await this.sample()).status ?? (await this.api.status());
  }

  /** Waits until at least `fraction` of the sample budget has been applied. */
  async waitForProgress(fraction: number, timeoutMs = 60_000): Promise<StatusResponse> {
    const target = Math.floor(this.config.maxSamples * fraction);
    return this.until(`${Math.round(fraction * 100)}% of the sample budget (${target} samples)`, () => this.statusOrNull(), (s) => !!s && (s.session?.totalSamples ?? 0) >= target, timeoutMs) as Promise<StatusResponse>;
  }

  /** Waits until `count` more rounds were applied after `fromVersion` (model version counts applied rounds). */
  async waitForAppliedRounds(fromVersion: number, count: number, timeoutMs = 30_000): Promise<StatusResponse> {
    return this.until(`${count} applied rounds after model version ${fromVersion}`, () => this.statusOrNull(), (s) => !!s && (s.modelVersion >= fromVersion + count || s.state !== 'running'), timeoutMs) as Promise<StatusResponse>;
  }

  private async statusOrNull(): Promise<StatusResponse | null> {
    return (await this.sample()).status;
  }

  async waitForEnd(timeoutMs = 120_000): Promise<StatusResponse> {
    return this.until('the session to end', () => this.statusOrNull(), (s) => !!s && ['completed', 'stopped', 'failed'].includes(s.state), timeoutMs, 200) as Promise<StatusResponse>;
  }

  /** Waits until every listed agent's node satisfies the predicate (and changed status after `since`, when known). */
  async waitForNodes(indices: number[], accept: (node: NodeInfo) => boolean, what: string, timeoutMs = 30_000, since = 0, intervalMs = 100): Promise<NodeInfo[]> {
    const names = indices.map((i) => this.agents[i].name);
    const nodes = await this.until(
      what,
      async () => (await this.sample()).nodes ?? [],
      (all) =>
        names.every((name) => {
          const node = all.find((n) => n.name === name);
          if (!node || !accept(node)) return false;
          return node.statusChangedAt === undefined || node.statusChangedAt >= since - 5;
        }),
      timeoutMs,
      intervalMs,
    );
    return names.map((name) => nodes.find((n) => n.name === name)!);
  }

  /** Polls fast until the agent's node is training (so a fault can hit it mid-round). */
  async waitForTraining(index: number, timeoutMs = 20_000): Promise<NodeInfo> {
    const name = this.agents[index].name;
    const nodes = await this.until(
      `${name} to be training`,
      async () => (await optional(() => this.api.nodes())) ?? [],
      (all) => all.some((n) => n.name === name && n.status === 'training'),
      timeoutMs,
      10,
    );
    this.recordNodes(nodes, Date.now());
    return nodes.find((n) => n.name === name)!;
  }

  /**
   * Polls fast until the coordinator marks the agent's node failed at or after `since`; returns what it saw.
   * For detection latencies prefer the server's own statusChangedAt (see analysis.ts); this is the fallback.
   */
  async waitForFailed(index: number, since: number, timeoutMs = 10_000): Promise<{ node: NodeInfo; observedAt: number }> {
    const name = this.agents[index].name;
    let observedAt = 0;
    const nodes = await this.until(
      `${name} to be marked failed`,
      async () => {
        const all = (await optional(() => this.api.nodes())) ?? [];
        observedAt = Date.now();
        return all;
      },
      (all) => all.some((n) => n.name === name && (n.status === 'failed' || n.status === 'left') && (n.statusChangedAt === undefined || n.statusChangedAt >= since - 5)),
      timeoutMs,
      15,
    );
    this.recordNodes(nodes, observedAt);
    return { node: nodes.find((n) => n.name === name)!, observedAt };
  }

  // ------------------------------------------------------------------ cleanup

  /** Kills every process of the run, closes the proxies, removes the data directory. Never throws. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.watcher) clearTimeout(this.watcher);
    const processes = [...this.servers, ...this.agents.flatMap((a) => a.history)];
    await Promise.all(processes.map((p) => killHard(p).catch(() => undefined)));
    await Promise.all(this.agents.map((a) => a.proxy?.close().catch(() => undefined)));
    if (!this.config.keepDataDir) {
      try {
        rmSync(this.dataDir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  }

  /** The end of each process's output, for failure reports. */
  diagnostics(chars = 2500): string {
    const parts: string[] = [];
    for (const s of this.servers) parts.push(`--- ${s.label} (pid ${s.pid})\n${s.tail(chars)}`);
    for (const a of this.agents) for (const p of a.history) parts.push(`--- ${p.label} (pid ${p.pid})\n${p.tail(Math.floor(chars / 2))}`);
    return parts.join('\n');
  }
}
