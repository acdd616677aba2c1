// The bootstrap of every worker thread (spawnWorker): the server's WorkerSupervisor (adapters/workers/supervisor.ts)
// and the agent's training thread (src/agent/training-thread.ts) start their entries here:
// one way to start an entry, whether it is TypeScript under tsx's loader (development, tests) or plain JavaScript
// (a bundled server).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';

const TYPESCRIPT_ENTRY = /\.(?:ts|mts|cts|tsx)$/;

/**
 * Starts a worker on `entry`, the one way every worker in the server starts.
 *
 * The thread runs a few lines of eval'd JavaScript that import the entry by its absolute file URL. When the
 * entry is TypeScript they first register tsx's loader inside the thread, through tsx's public ESM API resolved
 * from this file: Node 20 does not carry loader hooks into workers, neither the parent's nor ones given by
 * `--import` in execArgv (nodejs/node#47747, privatenumber/tsx#354: "Unknown file extension .ts", under `tsx`,
 * vitest and plain node alike). A JavaScript entry (a bundled server's worker file) is imported as is, and tsx
 * is not even looked up, so a production install without it works. An import that fails is rethrown outside
 * the promise, so it reaches the parent as the worker's 'error' and 'exit' like any other crash.
 */
export function spawnWorker(entry: URL, options: { name: string; workerData?: unknown; memoryReportMs?: number; resourceLimits?: ResourceLimits }): Worker {
  if (entry.protocol !== 'file:') throw new Error(`worker entry ${entry.href} is not a file URL`);
  const loader = TYPESCRIPT_ENTRY.test(entry.pathname) ? tsxEsmApiUrl() : null;
  const every = options.memoryReportMs;
  if (every !== undefined && !(Number.isInteger(every) && every > 0)) throw new Error(`memoryReportMs must be a positive integer, got ${every}`);
  const source =
    (every !== undefined ? memoryReporterSource(every) : '') +
    (loader ? `import(${JSON.stringify(loader)}).then((tsx) => { tsx.register(); })` : 'Promise.resolve()') +
    `.then(() => import(${JSON.stringify(entry.href)}))` +
    '.catch((error) => { setImmediate(() => { throw error; }); });';
  return new Worker(source, { eval: true, name: options.name, workerData: options.workerData, resourceLimits: options.resourceLimits });
}

/** The tag of the message a worker posts with its own isolate's memory (see memoryReporterSource). */
export const WORKER_MEMORY_REPORT = 'hypergpu:worker-memory';

export interface WorkerMemoryReport {
  type: typeof WORKER_MEMORY_REPORT;
  /** The worker's own V8 heap (process.memoryUsage() in a thread reports its isolate; rss is the process's). */
  heapUsed: number;
  heapTotal: number;
  /** Memory outside the heap held by the isolate's objects; arrayBuffers is the ArrayBuffer part of it. */
  external: number;
  arrayBuffers: number;
}

export function isWorkerMemoryReport(message: unknown): message is WorkerMemoryReport {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === WORKER_MEMORY_REPORT;
}

/**
 * A few lines run first in the thread: every `ms`, post the isolate's memory to the parent. Its own V8 heap is
 * invisible from the main thread (process.memoryUsage() there covers the main isolate only), and a thread holding
 * tfjs and a test set is most of a server's RSS. The timer is unref'd: it never keeps a thread alive.
 */
function memoryReporterSource(ms: number): string {
  return (
    `import('node:worker_threads').then(({ parentPort }) => { if (!parentPort) return; ` +
    `const report = () => { const m = process.memoryUsage(); parentPort.postMessage({ type: ${JSON.stringify(WORKER_MEMORY_REPORT)}, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers }); }; ` +
    `report(); setInterval(report, ${ms}).unref(); });\n`
  );
}

let cachedTsxEsmApiUrl: string | null = null;

/**
 * The file behind tsx's "./esm/api" export for an ESM import, resolved from this file rather than the cwd.
 * The ESM build, not the CommonJS one: the latter resolves its loader relative to the wrong folder.
 */
function tsxEsmApiUrl(): string {
  if (cachedTsxEsmApiUrl) return cachedTsxEsmApiUrl;
  let manifestPath: string;
  try {
    manifestPath = createRequire(import.meta.url).resolve('tsx/package.json');
  } catch {
    throw new Error('a TypeScript worker entry needs tsx, which is not installed; start a bundled (.js) entry instead');
  }
  const manifest: unknown = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const target = exportTarget(manifest, './esm/api');
  if (!target) throw new Error(`cannot find the "./esm/api" import export in ${manifestPath}; TypeScript worker entries need tsx's ESM API`);
  cachedTsxEsmApiUrl = pathToFileURL(path.join(path.dirname(manifestPath), target)).href;
  return cachedTsxEsmApiUrl;
}

function exportTarget(manifest: unknown, subpath: string): string | null {
  if (typeof manifest !== 'object' || manifest === null || !('exports' in manifest)) return null;
  const exportsField = manifest.exports;
  if (typeof exportsField !== 'object' || exportsField === null || !(subpath in exportsField)) return null;
  let entry: unknown = (exportsField as Record<string, unknown>)[subpath];
  // Walk the conditions an ESM import takes: import, then default.
  for (let depth = 0; depth < 4 && typeof entry === 'object' && entry !== null; depth++) {
    const conditions = entry as Record<string, unknown>;
    entry = conditions.import ?? conditions.default;
  }
  return typeof entry === 'string' ? entry : null;
}
