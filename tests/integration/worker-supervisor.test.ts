// The WorkerSupervisor with real worker threads: one bootstrap for a TypeScript entry (tsx's loader registered in
// the thread) and for plain JavaScript entries (what a bundled server starts), request/reply correlation, crashes
// and exits turned into rejected calls, the two restart policies, timeouts and close().
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import {
  IGNORE,
  READY,
  WorkerMemoryBoard,
  WorkerSupervisor,
  type WorkerMessage,
  type WorkerSupervisorOptions,
} from '../../src/server/adapters/workers/supervisor';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hypergpu-supervisor-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const TS_ENTRY = new URL('../support/workers/echo.worker.ts', import.meta.url);

/** A plain JavaScript entry, as a bundled build would have: `body` runs after `parentPort` is in scope. */
function jsWorker(name: string, body: string): URL {
  const file = path.join(tmp, `${name}.mjs`);
  writeFileSync(file, `import { parentPort, workerData } from 'node:worker_threads';\n${body}\n`);
  return pathToFileURL(file);
}

/** The echo protocol: replies double the value after delayMs; 'crash' makes the worker exit with code 7. */
const ECHO_JS = `
parentPort.postMessage({ type: 'ready', greeting: workerData?.greeting ?? 'hello' });
parentPort.on('message', (request) => {
  if (request.kind === 'crash') process.exit(7);
  if (request.kind === 'fail') { parentPort.postMessage({ type: 'error', id: request.id, message: 'no good' }); return; }
  if (request.kind === 'hang') for (;;) {}
  setTimeout(() => parentPort.postMessage({ type: 'reply', id: request.id, value: request.value * 2 }), request.delayMs);
});`;

type EchoRequest = { id: number; kind: 'echo' | 'crash' | 'fail' | 'hang'; value: number; delayMs: number };

function interpretEcho(seen: unknown[]): (raw: unknown) => WorkerMessage<number> {
  return (raw) => {
    seen.push(raw);
    const m = raw as { type?: string; id?: number; value?: number; message?: string };
    switch (m?.type) {
      case 'ready':
        return READY;
      case 'reply':
        return { type: 'reply', id: m.id!, value: m.value! };
      case 'error':
        return { type: 'reply-error', id: m.id!, message: m.message! };
      case 'fault':
        return { type: 'fault', message: m.message! };
      default:
        return IGNORE;
    }
  };
}

const open: Array<WorkerSupervisor<EchoRequest, number>> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

function supervisor(
  entry: URL,
  overrides: Partial<WorkerSupervisorOptions<number>> = {},
): { sup: WorkerSupervisor<EchoRequest, number>; lines: string[]; seen: unknown[]; crashes: Error[] } {
  const lines: string[] = [];
  const seen: unknown[] = [];
  const crashes: Error[] = [];
  const sup = new WorkerSupervisor<EchoRequest, number>({
    entry,
    name: 'echo worker',
    interpret: interpretEcho(seen),
    startTimeoutMs: 30_000,
    restart: 'on-next-call',
    log: (line) => lines.push(line),
    onCrash: (error) => crashes.push(error),
    ...overrides,
  });
  open.push(sup);
  return { sup, lines, seen, crashes };
}

const echo = (value: number, delayMs = 0) => (id: number): EchoRequest => ({ id, kind: 'echo', value, delayMs });
const ask = (kind: EchoRequest['kind']) => (id: number): EchoRequest => ({ id, kind, value: 0, delayMs: 0 });

describe('the bootstrap', () => {
  it('runs a TypeScript entry under tsx, with workerData', async () => {
    const { sup, seen } = supervisor(TS_ENTRY, { workerData: { greeting: 'from the test' } });
    await sup.start();
    expect(sup.state).toBe('ready');
    expect(seen[0]).toEqual({ type: 'ready', greeting: 'from the test' });
    expect(await sup.request(echo(21))).toBe(42);
  });

  it('runs a plain JavaScript entry as is (a bundled build)', async () => {
    const { sup, seen } = supervisor(jsWorker('echo', ECHO_JS), { workerData: { greeting: 'js' } });
    expect(await sup.request(echo(4))).toBe(8); // request() starts a worker that is down
    expect(seen[0]).toEqual({ type: 'ready', greeting: 'js' });
  });

  it('reports an entry that throws while loading, and a missing entry, as a failed start', async () => {
    const throwing = supervisor(jsWorker('throws', "throw new Error('broken entry');")).sup;
    await expect(throwing.start()).rejects.toThrow(/^echo worker failed to start: broken entry \(exit code 1\)$/);
    const missing = supervisor(pathToFileURL(path.join(tmp, 'no-such-entry.ts'))).sup;
    await expect(missing.start()).rejects.toThrow(/echo worker failed to start: .*no-such-entry\.ts/);
  });
});

describe('requests', () => {
  it('matches replies to requests whatever order they come back in', async () => {
    const { sup } = supervisor(TS_ENTRY);
    await sup.start();
    const delays = [60, 0, 30, 10, 45, 5];
    const results = await Promise.all(delays.map((delay, i) => sup.request(echo(i, delay))));
    expect(results).toEqual(delays.map((_, i) => i * 2));
  });

  it('moves transferred buffers instead of copying them', async () => {
    const { sup } = supervisor(jsWorker('transfer', `
parentPort.postMessage({ type: 'ready' });
parentPort.on('message', (r) => parentPort.postMessage({ type: 'reply', id: r.id, value: r.data.length }));`));
    const data = new Float32Array(1000);
    expect(await sup.request((id) => ({ id, data }) as unknown as EchoRequest, { transfer: [data.buffer] })).toBe(1000);
    expect(data.length).toBe(0); // detached here
  });

  it('rejects a failed request alone; the worker stays up', async () => {
    const { sup } = supervisor(jsWorker('fail', ECHO_JS));
    const [failed, fine] = await Promise.allSettled([sup.request(ask('fail')), sup.request(echo(1))]);
    expect(failed.status === 'rejected' && String(failed.reason)).toMatch(/no good/);
    expect(fine).toEqual({ status: 'fulfilled', value: 2 });
    expect(sup.state).toBe('ready');
  });

  it('times out a stuck request, stops the worker, and serves the next call from a new one', async () => {
    const { sup, lines } = supervisor(jsWorker('hang', ECHO_JS));
    await sup.start();
    const stuck = sup.request(ask('hang'), { timeoutMs: 200, what: 'echo' });
    const behind = sup.request(echo(1), { timeoutMs: 60_000 });
    await expect(stuck).rejects.toThrow(/^echo timed out after 200 ms; echo worker was stopped/);
    await expect(behind).rejects.toThrow(/^echo worker was stopped: echo \d+ took longer than 200 ms$/);
    expect(lines.some((l) => l.startsWith('echo worker was stopped'))).toBe(true);
    expect(await sup.request(echo(5))).toBe(10);
  });
});

describe('crashes and restarts', () => {
  it("rejects the crashed worker's pending calls with the reason, and restarts on the next call", async () => {
    const { sup, lines, crashes } = supervisor(jsWorker('crash', ECHO_JS));
    await sup.start();
    const calls = [sup.request(echo(1, 5_000)), sup.request(echo(2, 5_000)), sup.request(ask('crash'))];
    for (const outcome of await Promise.allSettled(calls)) {
      expect(outcome.status).toBe('rejected');
      expect(String((outcome as PromiseRejectedResult).reason)).toMatch(/^Error: echo worker crashed: exited with code 7$/);
    }
    expect(crashes.map((e) => e.message)).toEqual(['echo worker crashed: exited with code 7']);
    expect(lines).toContain('echo worker crashed: exited with code 7; its pending calls were rejected, the next call starts a new one');
    expect(sup.state).toBe('down');
    expect(await sup.request(echo(3))).toBe(6);
  });

  it("names an uncaught error as the crash's reason", async () => {
    const { sup } = supervisor(jsWorker('throw-later', `
parentPort.postMessage({ type: 'ready' });
parentPort.on('message', () => { throw new Error('boom in worker'); });`));
    await expect(sup.request(echo(1))).rejects.toThrow(/^echo worker crashed: boom in worker \(exit code 1\)$/);
  });

  it("'immediately' starts a replacement without waiting for a call", async () => {
    const { sup, lines } = supervisor(TS_ENTRY, { restart: 'immediately' });
    await sup.start();
    await sup.crashForTest();
    expect(sup.state).toBe('starting');
    expect(lines.some((l) => l.includes('crashed: exited with code 1') && l.includes('starting a replacement'))).toBe(true);
    await sup.start(); // the replacement's start, not a new one
    expect(await sup.request(echo(8))).toBe(16);
  });

  it('never restarts in a loop when a worker dies before it is ready: the next call tries once', async () => {
    const { sup, crashes } = supervisor(jsWorker('dies-at-start', 'process.exit(3);'), { restart: 'immediately' });
    await expect(sup.start()).rejects.toThrow(/^echo worker failed to start: exited with code 3$/);
    expect(sup.state).toBe('down');
    expect(crashes).toEqual([]);
    await expect(sup.request(echo(1))).rejects.toThrow(/failed to start: exited with code 3/);
    expect(sup.state).toBe('down');
  });

  it('fails a start on a fault before ready, and on a start timeout', async () => {
    const faulty = supervisor(jsWorker('fault', "parentPort.postMessage({ type: 'fault', message: 'no model here' });")).sup;
    await expect(faulty.start()).rejects.toThrow(/^echo worker failed to start: no model here$/);
    const silent = supervisor(jsWorker('silent', 'setInterval(() => {}, 1000);'), { startTimeoutMs: 200 }).sup;
    await expect(silent.start()).rejects.toThrow(/^echo worker failed to start: did not start within 200 ms$/);
  });

  it('keeps a fault reported after ready as the reason if the worker dies later', async () => {
    const { sup } = supervisor(jsWorker('fault-later', `
parentPort.postMessage({ type: 'ready' });
parentPort.on('message', () => { parentPort.postMessage({ type: 'fault', message: 'lost the kernel' }); setTimeout(() => process.exit(2), 20); });`));
    await expect(sup.request(echo(1))).rejects.toThrow(/^echo worker crashed: lost the kernel \(exit code 2\)$/);
  });
});

describe('close', () => {
  it('rejects pending calls with the given error, terminates the worker and refuses later calls', async () => {
    const { sup, crashes } = supervisor(TS_ENTRY);
    await sup.start();
    const pending = sup.request(echo(1, 60_000)).catch((error: Error) => error);
    await sup.close(new Error('shutting down'));
    expect(await pending).toEqual(new Error('shutting down'));
    expect(sup.state).toBe('closed');
    expect(crashes).toEqual([]);
    await expect(sup.request(echo(1))).rejects.toThrow(/^echo worker is closed$/);
    await expect(sup.start()).rejects.toThrow(/is closed/);
    await sup.close(); // idempotent
  });

  it('fails a start still in progress', async () => {
    const { sup } = supervisor(jsWorker('slow-start', "setTimeout(() => parentPort.postMessage({ type: 'ready' }), 60_000);"));
    const starting = sup.start();
    await sup.close();
    await expect(starting).rejects.toThrow(/^echo worker was closed$/);
  });
});

describe('worker memory reports', () => {
  it("puts each worker's own heap and external memory on the board, never through interpret, and takes it off when the worker exits", async () => {
    const board = new WorkerMemoryBoard();
    // The worker holds 48 MiB of ArrayBuffers and a 10-million-element JS array: its own isolate's memory, which
    // the main thread's process.memoryUsage() does not include.
    const entry = jsWorker('holds-memory', `globalThis.kept = [new ArrayBuffer(48 * 2 ** 20), Array.from({ length: 10_000_000 }, (_, i) => i)]; new Uint8Array(globalThis.kept[0]).fill(1);\n${ECHO_JS}`);
    const { sup, seen } = supervisor(entry, { memoryBoard: board, memoryReportMs: 100, restart: 'on-next-call' });
    expect(await sup.request((id) => ({ id, kind: 'echo', value: 2, delayMs: 0 }))).toBe(4);
    const report = await eventuallyValue(() => board.snapshot().find((m) => m.worker === 'echo worker' && m.external >= 48 * 2 ** 20));
    expect(report.arrayBuffers).toBeGreaterThanOrEqual(48 * 2 ** 20);
    // 10 million small integers: 80 MB of elements in the worker's heap.
    expect(report.heapUsed).toBeGreaterThan(60 * 2 ** 20);
    expect(report.heapTotal).toBeGreaterThanOrEqual(report.heapUsed);
    expect(seen.some((m) => (m as { type?: string }).type === 'hypergpu:worker-memory')).toBe(false);

    await sup.request((id) => ({ id, kind: 'crash', value: 0, delayMs: 0 })).catch(() => {});
    await eventuallyValue(() => (board.snapshot().length === 0 ? true : undefined));
  }, 60_000);

  it('reports nothing without a board', async () => {
    const entry = jsWorker('no-board', ECHO_JS);
    const { sup, seen } = supervisor(entry);
    expect(await sup.request((id) => ({ id, kind: 'echo', value: 1, delayMs: 300 }))).toBe(2);
    expect(seen.map((m) => (m as { type?: string }).type)).toEqual(['ready', 'reply']);
  });
});

async function eventuallyValue<T>(read: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error('timed out waiting for a worker memory report');
    await new Promise((r) => setTimeout(r, 50));
  }
}
