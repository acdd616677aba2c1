// The local agents `npm start` runs beside the coordinator: child processes of the real agent CLI, each with its
// own state directory, restarted when they crash.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LogLine } from './core/events';
import { withoutServerEnv } from './node-flags';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export type AgentProfile = 'uniform' | 'mixed';
export const BYZANTINE_MODES = ['sign-flip', 'scale', 'random', 'blow-up'] as const;
export type ByzantineMode = (typeof BYZANTINE_MODES)[number];
/** What `--byzantine K` without a mode sends, in turn: the modes a norm screen does not catch. */
const ROTATED_BYZANTINE_MODES: readonly ByzantineMode[] = ['sign-flip', 'scale', 'random'];

/** One local agent: its name, the agent flags that make it what it is, and a line saying so. */
export interface LocalAgentRole {
  name: string;
  args: string[];
  description: string;
}

/**
 * `--profile mixed` cycles through three kinds of machine, so that work sizing has something to adapt to: a fast
 * one on a near link, one at half speed 40 ms away on 50 MB/s, one at a quarter speed 120 ms away on 10 MB/s.
 */
const MIXED_TIERS = [
  { speed: 1, latencyMs: 0, uploadBytesPerSecond: 0 },
  { speed: 0.5, latencyMs: 40, uploadBytesPerSecond: 50e6 },
  { speed: 0.25, latencyMs: 120, uploadBytesPerSecond: 10e6 },
];

/**
 * The local agents to start: `nodes` honest ones (all alike, or mixed), then `byzantine` ones that send bad
 * updates (each the given mode, or sign-flip, scale and random in turn). Byzantine agents are named for what
 * they are, so the node table and the log show who misbehaves.
 */
export function planLocalAgents(nodes: number, profile: AgentProfile = 'uniform', byzantine = 0, mode?: ByzantineMode): LocalAgentRole[] {
  const roles: LocalAgentRole[] = [];
  for (let i = 1; i <= nodes; i++) {
    const tier = MIXED_TIERS[(i - 1) % MIXED_TIERS.length];
    if (profile === 'uniform' || tier.speed === 1) {
      roles.push({ name: `local-${i}`, args: [], description: 'honest, full speed' });
      continue;
    }
    roles.push({
      name: `local-${i}`,
      args: ['--simulate-speed', String(tier.speed), '--simulate-latency', String(tier.latencyMs), '--simulate-upload', String(tier.uploadBytesPerSecond)],
      description: `honest, ${tier.speed}x speed, +${tier.latencyMs} ms, ${tier.uploadBytesPerSecond / 1e6} MB/s upload`,
    });
  }
  for (let k = 1; k <= byzantine; k++) {
    const m = mode ?? ROTATED_BYZANTINE_MODES[(k - 1) % ROTATED_BYZANTINE_MODES.length];
    roles.push({ name: `byzantine-${k}`, args: ['--byzantine', m], description: `BYZANTINE: sends ${m} updates` });
  }
  return roles;
}

/** Local agents as child processes; a crashed one is restarted (at most 5 times a minute). */
export class LocalAgents {
  private readonly children = new Map<number, ChildProcess>();
  private readonly restarts: number[] = [];
  private stopping = false;

  constructor(
    private readonly coordinatorUrl: string,
    private readonly quiet: boolean,
    private readonly stateDir: string,
    /** `name=dir` of every registered dataset: local agents share this machine's folders. */
    private readonly datasetSpecs: string[] = [],
    /** Env for the agents: the join token issued for them, and the CA file that verifies a TLS coordinator. */
    private readonly agentEnv: Record<string, string> = {},
    private readonly log: (line: LogLine) => void = () => {},
  ) {}

  private roles: LocalAgentRole[] = [];

  /** Starts `count` plain agents, or the agents a plan names (planLocalAgents). */
  start(agents: number | LocalAgentRole[]): void {
    this.roles = typeof agents === 'number' ? planLocalAgents(agents) : agents;
    for (let i = 1; i <= this.roles.length; i++) this.spawn(i);
  }

  private spawn(index: number): void {
    const role = this.roles[index - 1];
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'agent', 'cli.ts'), '--coordinator', this.coordinatorUrl, '--name', role.name, '--state-dir', this.stateDir, ...this.datasetSpecs.flatMap((spec) => ['--dataset', spec]), ...role.args], {
      cwd: ROOT,
      // The IPC channel is only there to close when this process dies, however it dies (see agent cli).
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...withoutServerEnv(process.env), ...this.agentEnv },
    });
    this.children.set(index, child);
    const forward = (stream: NodeJS.ReadableStream, out: NodeJS.WritableStream) => {
      let buffered = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) if (!this.quiet || out === process.stderr) out.write(`${line}\n`);
      });
    };
    forward(child.stdout!, process.stdout);
    forward(child.stderr!, process.stderr);
    child.on('exit', (code, signal) => {
      this.children.delete(index);
      if (this.stopping) return;
      const now = Date.now();
      this.restarts.push(now);
      while (this.restarts.length && now - this.restarts[0] > 60_000) this.restarts.shift();
      if (this.restarts.length > 5) {
        this.log({ at: now, level: 'error', message: `agent ${role.name} keeps exiting (${signal ?? `code ${code}`}); not restarting it` });
        return;
      }
      this.log({ at: now, level: 'warn', message: `agent ${role.name} exited (${signal ?? `code ${code}`}); restarting it` });
      setTimeout(() => !this.stopping && this.spawn(index), 1000);
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const exits = [...this.children.values()].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => {
            child.kill('SIGKILL');
            resolve();
          }, 5000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
  }
}
