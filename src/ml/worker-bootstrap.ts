// The bootstrap of every worker thread (spawnWorker): the server's WorkerSupervisor (adapters/workers/supervisor.ts)
// and the agent's training thread (src/agent/training-thread.ts) start their entries here:
// one way to start an entry, whether it is TypeScript under tsx's loader (development, tests) or plain JavaScript
// (a bundled server).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

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
export function spawnWorker(entry: URL, options: { name: string; workerData?: unknown }): Worker {
  if (entry.protocol !== 'file:') throw new Error(`worker entry ${entry.href} is not a file URL`);
  const loader = TYPESCRIPT_ENTRY.test(entry.pathname) ? tsxEsmApiUrl() : null;
  const source =
    (loader ? `import(${JSON.stringify(loader)}).then((tsx) => { tsx.register(); })` : 'Promise.resolve()') +
    `.then(() => import(${JSON.stringify(entry.href)}))` +
    '.catch((error) => { setImmediate(() => { throw error; }); });';
  return new Worker(source, { eval: true, name: options.name, workerData: options.workerData });
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
