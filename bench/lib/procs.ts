// Child processes for the benchmarks (the real server, real agents, helper processes), and what the
// benchmarks read about them from /proc. Every child is registered here and killed when the suite exits,
// however it exits (normal end, error, Ctrl-C), so no benchmark leaves a server or agent behind.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { buildServer, SERVER_BUNDLE } from '../../scripts/build-server.mjs';
import { SERVER_ENV, SERVER_NODE_FLAGS } from '../../src/server/node-flags';
import { ROOT, sleep, waitFor } from './common';

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let handlersInstalled = false;

function killAllNow(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        // A SIGSTOPped child ignores SIGTERM until continued; SIGKILL ends it either way.
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  tempDirs.clear();
}

/** Installs the exit hooks once: children die with the suite, on any path out of it. */
export function installCleanup(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killAllNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal}: stopping benchmark child processes\n`);
      killAllNow();
      process.exit(130);
    });
  }
}

/** Spawns a tracked child process. */
export function spawnTracked(command: string, args: string[], options: SpawnOptions): ChildProcess {
  installCleanup();
  const child = spawn(command, args, options);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function trackedTempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  tempDirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

/** Sends `signal`, then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    child.kill('SIGCONT');
    child.kill(signal);
  } catch {
    return;
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
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

/** Keeps the last `limit` characters of a child's output, for error messages. */
function captureOutput(child: ChildProcess, limit = 20_000): () => string {
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > 2 * limit) output = output.slice(-limit);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return () => output.slice(-limit);
}

// ------------------------------------------------------------------ the server

export interface ServerHandle {
  child: ChildProcess;
  pid: number;
  port: number;
  baseUrl: string;
  agentUrl: string;
  dataDir: string;
  output(): string;
  stop(): Promise<void>;
}

let built: Promise<unknown> | null = null;

/**
 * The node arguments that start the coordinator: by default as `npm start` does, the esbuild bundle
 * (.build/server/main.mjs, built here once per run); 'tsx' runs the TypeScript sources under tsx's loader (in
 * every thread), as `npm start` did before the bundle: the memory benchmark compares the two.
 */
export async function serverEntryArgs(mode: 'bundle' | 'tsx' = 'bundle'): Promise<string[]> {
  if (mode === 'tsx') return ['--import', 'tsx', path.join(ROOT, 'src/server/main.ts')];
  built ??= buildServer({ quiet: true });
  await built;
  return [SERVER_BUNDLE];
}

/**
 * Starts the real coordinator as `node <entry>` (see serverEntryArgs), so the child's pid is the server's own
 * (its /proc entry is what the scale, soak and memory benchmarks read). API only (no dashboard) unless
 * `dashboard` is set; no session, no local agents.
 */
export async function startServer(options: { env?: Record<string, string>; args?: string[]; nodeArgs?: string[]; mode?: 'bundle' | 'tsx'; dashboard?: boolean } = {}): Promise<ServerHandle> {
  const port = await freePort();
  const dataDir = trackedTempDir('hypergpu-bench-');
  const args = [...SERVER_NODE_FLAGS, ...(options.nodeArgs ?? []), ...(await serverEntryArgs(options.mode)), ...(options.dashboard ? [] : ['--no-dashboard']), '--no-session', '--nodes', '0', '--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir, ...(options.args ?? [])];
  const child = spawnTracked(process.execPath, args, {
    cwd: ROOT,
    // Benchmarks measure training, not admission: the pool is opened, and one address may open many sockets.
    env: { ...process.env, ...SERVER_ENV, NEXT_TELEMETRY_DISABLED: '1', HYPERGPU_ADMIN_TOKEN: BENCH_ADMIN_TOKEN, HYPERGPU_OPEN_POOL: '1', HYPERGPU_MAX_AGENT_CONNECTIONS_PER_ADDRESS: '100000', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = captureOutput(child);
  const baseUrl = `http://127.0.0.1:${port}`;
  const handle: ServerHandle = {
    child,
    pid: child.pid!,
    port,
    baseUrl,
    agentUrl: `ws://127.0.0.1:${port}/agent`,
    dataDir,
    output,
    async stop() {
      await stopChild(child, 'SIGTERM', 20_000);
      try {
        removeTempDir(dataDir);
      } catch {
        // best effort
      }
    },
  };
  try {
    let exited: (() => void) | null = null;
    const exit = new Promise<never>((_, reject) => {
      exited = () => reject(new Error(`the server exited (code ${child.exitCode}, signal ${child.signalCode}) before answering /health:\n${output().slice(-2000)}`));
      child.once('exit', exited);
    });
    exit.catch(() => {});
    try {
      await Promise.race([exit, waitFor(async () => (await fetch(`${baseUrl}/health`)).ok, (ok) => ok, 120_000, 'the server to answer /health', 100)]);
    } finally {
      if (exited) child.off('exit', exited);
    }
  } catch (error) {
    await handle.stop();
    throw error;
  }
  return handle;
}

// ------------------------------------------------------------------ real agents

export interface AgentHandle {
  child: ChildProcess;
  pid: number;
  name: string;
  output(): string;
  stop(): Promise<void>;
}

/** Starts a real agent process (src/agent/cli.ts). The IPC channel makes it leave if this process dies. */
export function spawnAgent(coordinatorUrl: string, name: string, env: Record<string, string> = {}): AgentHandle {
  const child = spawnTracked(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/agent/cli.ts'), '--coordinator', coordinatorUrl, '--name', name], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const output = captureOutput(child);
  return { child, pid: child.pid!, name, output, stop: () => stopChild(child, 'SIGTERM', 5000) };
}

// ------------------------------------------------------------------ HTTP

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** GET (or POST with a JSON body) over a keep-alive agent; returns status and parsed JSON. */
/** The admin token benchmark servers start with: starting, pausing and stopping sessions need the operator. */
export const BENCH_ADMIN_TOKEN = 'hypergpu-bench-admin-token-0123456789';

/** The server's /metrics exposition text (Prometheus format), read with the benchmark's admin token. */
export async function scrapeMetrics(baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/metrics`, { headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` } });
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

export function requestJson(url: string, method: 'GET' | 'POST' = 'GET', body?: unknown): Promise<{ status: number; body: any; bytes: number }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const auth = { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` };
    const req = http.request(url, { method, agent: keepAlive, headers: payload ? { ...auth, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : auth }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null, bytes: Buffer.byteLength(text) });
        } catch (error) {
          reject(new Error(`${method} ${url}: response is not JSON (${res.statusCode}): ${text.slice(0, 200)}`));
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

export async function getJson(url: string): Promise<any> {
  const res = await requestJson(url);
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  return res.body;
}

export async function startSession(server: ServerHandle, config: Record<string, unknown>): Promise<any> {
  const res = await requestJson(`${server.baseUrl}/api/training/start`, 'POST', config);
  if (res.status !== 201) throw new Error(`POST /api/training/start: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  return res.body;
}

export async function stopSession(server: ServerHandle): Promise<void> {
  const res = await requestJson(`${server.baseUrl}/api/training/stop`, 'POST');
  if (res.status !== 200 && res.status !== 409) throw new Error(`POST /api/training/stop: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
}

/** Waits until `count` nodes with the given names prefix are connected (idle or training). */
export async function waitForNodes(server: ServerHandle, names: string[], timeoutMs = 120_000): Promise<any[]> {
  const wanted = new Set(names);
  const nodes = await waitFor(
    async () => ((await getJson(`${server.baseUrl}/api/nodes`)).nodes as any[]).filter((n) => wanted.has(n.name) && (n.status === 'idle' || n.status === 'training')),
    (list) => list.length === wanted.size,
    timeoutMs,
    `${names.length} node(s) to connect (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''})`,
    200,
  );
  return nodes;
}

// ------------------------------------------------------------------ /proc

/** Linux reports utime/stime in clock ticks: USER_HZ, 100 on every mainstream kernel (getconf CLK_TCK). */
const CLOCK_TICKS = 100;

/** CPU seconds (user + system, all threads) the process has used so far. */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name is in parentheses and may contain spaces: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLOCK_TICKS;
}

/** Resident and peak resident memory in bytes. */
export function processMemory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Samples a process's RSS every `intervalMs` until stopped. */
export function sampleRss(pid: number, intervalMs: number): { stop(): { at: number; rss: number }[]; samples: { at: number; rss: number }[] } {
  const samples: { at: number; rss: number }[] = [];
  const take = () => {
    try {
      samples.push({ at: Date.now(), rss: processMemory(pid).rss });
    } catch {
      // process gone
    }
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    samples,
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

export { sleep };
