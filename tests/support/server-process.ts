// Starts the real HyperGPU server as a child process for integration tests: real agents, real sockets, a real
// SQLite file in a temporary data directory. It runs what `npm start` runs: the esbuild bundle of
// src/server/main.ts and its worker entries (.build/server, rebuilt here when the sources changed), not tsx.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildServer, SERVER_BUNDLE } from '../../scripts/build-server.mjs';
import { SERVER_ENV, SERVER_NODE_FLAGS } from '../../src/server/node-flags';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The admin token every test server is started with (HYPERGPU_ADMIN_TOKEN), so tests can operate it; a test that
 * exercises the generated token passes its own env.
 */
export const TEST_ADMIN_TOKEN = 'hypergpu-test-admin-token-0123456789';
/** Headers that make a request the operator's. */
export const OPERATOR_HEADERS = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } as const;

let built: Promise<unknown> | null = null;

/** The bundled server entry, built once per test process (later builds in other processes rewrite only changed files). */
export async function serverEntry(): Promise<string> {
  built ??= buildServer({ quiet: true });
  await built;
  return SERVER_BUNDLE;
}

export async function freePort(): Promise<number> {
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

export function tempDataDir(prefix = 'hypergpu-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  dataDir: string;
  baseUrl: string;
  output(): string;
  /** Resolves with the exit code once the process has ended. */
  exited: Promise<number | null>;
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts the server. Tests that are not about agent admission run it with the pool opened (raw clients and
 * agents join without a join token); pass `env: { HYPERGPU_OPEN_POOL: '0' }` to test admission.
 */
export async function startServer(args: string[], options: { dataDir?: string; port?: number; env?: Record<string, string> } = {}): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? tempDataDir();
  const entry = await serverEntry();
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, entry, '--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...SERVER_ENV, NEXT_TELEMETRY_DISABLED: '1', HYPERGPU_ADMIN_TOKEN: TEST_ADMIN_TOKEN, HYPERGPU_OPEN_POOL: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (process.env.HYPERGPU_TEST_VERBOSE) process.stdout.write(chunk);
    for (const listener of listeners) listener();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitForOutput = (pattern: RegExp, timeoutMs = 120_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const match = output.match(pattern);
        if (match) {
          listeners.delete(check);
          clearTimeout(timer);
          resolve(match);
        }
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern}; output so far:\n${output.slice(-3000)}`));
      }, timeoutMs);
      listeners.add(check);
      void exited.then(() => {
        if (listeners.has(check)) {
          check();
          if (listeners.has(check)) {
            listeners.delete(check);
            clearTimeout(timer);
            reject(new Error(`server exited before printing ${pattern}; output:\n${output.slice(-3000)}`));
          }
        }
      });
      check();
    });
  const server: ServerProcess = {
    child,
    port,
    dataDir,
    baseUrl: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    waitForOutput,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  return server;
}

/** Polls an HTTP endpoint until it answers (the server is up). */
export async function waitForHttp(url: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Polls until the predicate holds; for waiting on a live system, never for fixed sleeps. */
export async function eventually<T>(probe: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = 60_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown = null;
  for (;;) {
    try {
      // A probe that throws (a server still starting refuses connections) counts as "not yet".
      last = await probe();
      lastError = null;
      if (accept(last)) return last;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const seen = lastError ? `last error: ${lastError instanceof Error ? lastError.message : String(lastError)}` : `last value: ${JSON.stringify(last)?.slice(0, 500)}`;
      throw new Error(`timed out waiting for ${what}; ${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Runs `wait`; when it fails, the error also carries the last lines the server printed, so a timeout in CI says
 * what the server was doing instead of only what was not reached.
 */
export async function withServerTail<T>(server: ServerProcess, wait: () => Promise<T>, lines = 25): Promise<T> {
  try {
    return await wait();
  } catch (error) {
    const tail = server.output().trimEnd().split('\n').slice(-lines).join('\n');
    const message = error instanceof Error ? error.message : String(error);
    // The failure last: a log cut from the top still shows it.
    throw new Error(`the server's last ${lines} lines:\n${tail}\n${message}`, { cause: error });
  }
}

/** What `--headless` prints when its session ends (the JSON object on its own lines). */
export interface HeadlessSummary {
  ok: boolean;
  sessionId: number;
  state: string;
  finalAccuracy: number;
  rounds: number;
  samples: number;
  samplesPerSecond: number;
  nodes: number;
}

/** The headless run's JSON summary from its output; throws with the output's tail when there is none. */
export function headlessSummary(output: string): HeadlessSummary {
  const json = output.match(/^\{\n[\s\S]*?\n\}$/m);
  if (!json) throw new Error(`no JSON summary in the output:\n${output.slice(-3000)}`);
  return JSON.parse(json[0]) as HeadlessSummary;
}
