// Child processes of a chaos run: each in its own process group (so a signal reaches all of it), its output
// kept line by line with arrival times, and every one of them killed when the run ends, however it ends.
// A preloaded guard (parent-guard.mjs) makes children kill themselves if the harness itself is killed.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const GUARD = pathToFileURL(path.join(ROOT, 'tests/support/chaos/parent-guard.mjs')).href;

export interface OutputLine {
  at: number;
  text: string;
}

export interface ManagedProcess {
  readonly label: string;
  readonly pid: number;
  readonly startedAt: number;
  readonly child: ChildProcess;
  /** Resolves once the process has exited (code or signal). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  /** Sends a signal to the process group (the process and anything it started). */
  signal(signal: NodeJS.Signals): void;
  lines(): readonly OutputLine[];
  /** The last characters of its output, for failure messages. */
  tail(chars?: number): string;
  /** Resolves with the first line at or after `since` (epoch ms) that matches. */
  waitForLine(pattern: RegExp, options?: { since?: number; timeoutMs?: number }): Promise<OutputLine>;
}

const MAX_LINES = 20_000;
const live = new Set<ManagedProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort: the harness process is exiting with children still running.
  process.on('exit', () => {
    for (const p of live) {
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

export interface SpawnOptions {
  label: string;
  /** Arguments after `node --import tsx --import <guard>`. */
  args: string[];
  env?: Record<string, string>;
  /** Mirror output to this function as it arrives (verbose mode). */
  echo?: (line: string) => void;
}

/** Starts `node --import tsx <args>` from the repository root in a new process group. */
export function spawnNode(options: SpawnOptions): ManagedProcess {
  installExitHook();
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', GUARD, ...options.args], {
    cwd: ROOT,
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid === undefined) throw new Error(`could not start ${options.label}`);
  const pid = child.pid;
  const startedAt = Date.now();
  const lines: OutputLine[] = [];
  const listeners = new Set<(line: OutputLine) => void>();
  let exitedFlag = false;
  const onStream = (stream: NodeJS.ReadableStream) => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const at = Date.now();
      partial += chunk;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const text of parts) {
        const line = { at, text };
        lines.push(line);
        if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES);
        options.echo?.(`[${options.label}] ${text}`);
        for (const l of [...listeners]) l(line);
      }
    });
  };
  onStream(child.stdout!);
  onStream(child.stderr!);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      exitedFlag = true;
      live.delete(managed);
      for (const l of [...listeners]) l({ at: Date.now(), text: '' });
      resolve({ code, signal });
    }),
  );
  child.once('error', () => undefined);
  const managed: ManagedProcess = {
    label: options.label,
    pid,
    startedAt,
    child,
    exited,
    alive: () => !exitedFlag,
    signal(signal) {
      if (exitedFlag) return;
      try {
        process.kill(-pid, signal);
      } catch {
        try {
          process.kill(pid, signal);
        } catch {
          // gone
        }
      }
    },
    lines: () => lines,
    tail(chars = 3000) {
      const text = lines.map((l) => l.text).join('\n');
      return text.slice(-chars);
    },
    waitForLine(pattern, { since = 0, timeoutMs = 60_000 } = {}) {
      return new Promise<OutputLine>((resolve, reject) => {
        const existing = lines.find((l) => l.at >= since && pattern.test(l.text));
        if (existing) return resolve(existing);
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`${options.label}: no line matching ${pattern} within ${timeoutMs} ms; output:\n${managed.tail(2000)}`));
        }, timeoutMs);
        const check = (line: OutputLine) => {
          if (line.at >= since && pattern.test(line.text)) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(line);
          } else if (exitedFlag) {
            listeners.delete(check);
            clearTimeout(timer);
            reject(new Error(`${options.label} exited before printing ${pattern}; output:\n${managed.tail(2000)}`));
          }
        };
        listeners.add(check);
        if (exitedFlag) check({ at: Date.now(), text: '' });
      });
    },
  };
  live.add(managed);
  return managed;
}

/** SIGKILLs the process group and waits (bounded) for the exit. A stopped process dies from SIGKILL too. */
export async function killHard(p: ManagedProcess, timeoutMs = 5000): Promise<void> {
  if (!p.alive()) return;
  p.signal('SIGKILL');
  await Promise.race([p.exited, new Promise((resolve) => setTimeout(resolve, timeoutMs))]);
}

/** Every process this harness started that is still running. */
export function liveProcesses(): ManagedProcess[] {
  return [...live];
}

export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => killHard(p)));
}
