// The local agents `npm start` runs beside the coordinator: child processes of the real agent CLI, each with its
// own state directory, restarted when they crash.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LogLine } from './core/events';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

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

  start(count: number): void {
    for (let i = 1; i <= count; i++) this.spawn(i);
  }

  private spawn(index: number): void {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'agent', 'cli.ts'), '--coordinator', this.coordinatorUrl, '--name', `local-${index}`, '--state-dir', this.stateDir, ...this.datasetSpecs.flatMap((spec) => ['--dataset', spec])], {
      cwd: ROOT,
      // The IPC channel is only there to close when this process dies, however it dies (see agent cli).
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...this.agentEnv },
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
        this.log({ at: now, level: 'error', message: `agent local-${index} keeps exiting (${signal ?? `code ${code}`}); not restarting it` });
        return;
      }
      this.log({ at: now, level: 'warn', message: `agent local-${index} exited (${signal ?? `code ${code}`}); restarting it` });
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
