// Picks the fastest TensorFlow.js backend this machine can run, and says which one and why.
//
// Order, fastest first: tfjs-node-gpu (CUDA), tfjs-node (native libtensorflow), wasm (SIMD), pure-JS cpu.
// The native packages are optionalDependencies whose install downloads libtensorflow; where that fails
// npm drops them silently, so each is tried with a guarded require and the failure is recorded in `tried`.
// Everything is loaded through one CommonJS `require` so tsx, vitest and worker threads all share the
// same tfjs-core instance (two instances would each hold their own kernel registry and engine).

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

import { registerWasmConv2DBackpropFilter } from './kernels/conv2d-backprop-filter';

/** The tfjs handle the rest of src/ml works with (tfjs-core's API; every backend package re-exports it). */
export type Tf = typeof import('@tensorflow/tfjs-core');

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  name: BackendName;
  /** Human description of what computes: GPU model, CPU model, SIMD/threads. */
  device: string;
  /** Why this backend was chosen (what failed before it, or that it was forced). */
  reason: string;
  /** Faster backends that were tried first and why each was skipped. */
  tried: { name: string; error: string }[];
}

export interface LoadTfOptions {
  /** Start the search at this backend (falls back to slower ones). HYPERGPU_BACKEND overrides it. */
  prefer?: BackendName;
  log?: (line: string) => void;
}

export const BACKEND_ORDER: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

const requireFromHere = createRequire(import.meta.url);

let loaded: Promise<{ tf: Tf; info: BackendInfo }> | null = null;
let loadedKey = '';

/**
 * Loads tfjs with the best available backend. The backend is process-global state in tfjs, so the first
 * successful load is cached (and logged once, through the first caller's `log`); a later call with a
 * different preference selects again. Use describeBackend(info) to log it elsewhere.
 *
 * HYPERGPU_BACKEND=<name> forces exactly that backend and fails loudly if it cannot start, so an operator
 * who asked for the GPU never silently trains on the CPU.
 */
export function loadTf(opts: LoadTfOptions = {}): Promise<{ tf: Tf; info: BackendInfo }> {
  let forced: BackendName | null;
  try {
    forced = parseBackendName(process.env.HYPERGPU_BACKEND);
  } catch (error) {
    return Promise.reject(error);
  }
  const key = forced ? `force:${forced}` : `prefer:${opts.prefer ?? ''}`;
  if (!loaded || loadedKey !== key) {
    loadedKey = key;
    const attempt = selectBackend(forced, opts.prefer).then((result) => {
      opts.log?.(describeBackend(result.info));
      return result;
    });
    // A failed load must not poison later attempts (for example after the operator fixes the env var).
    attempt.catch(() => {
      if (loaded === attempt) loaded = null;
    });
    loaded = attempt;
  }
  return loaded;
}

/** One line for logs: "backend wasm (SIMD, 1 thread): @tensorflow/tfjs-node not installed". */
export function describeBackend(info: BackendInfo): string {
  return `backend ${info.name} (${info.device}): ${info.reason}`;
}

function parseBackendName(value: string | undefined): BackendName | null {
  if (value === undefined || value.trim() === '') return null;
  const name = value.trim().toLowerCase();
  if ((BACKEND_ORDER as readonly string[]).includes(name)) return name as BackendName;
  throw new Error(`HYPERGPU_BACKEND=${value} is not a backend; use one of ${BACKEND_ORDER.join(', ')}`);
}

async function selectBackend(
  forced: BackendName | null,
  prefer: BackendName | undefined,
): Promise<{ tf: Tf; info: BackendInfo }> {
  const candidates = forced
    ? [forced]
    : BACKEND_ORDER.slice(prefer ? BACKEND_ORDER.indexOf(prefer) : 0);
  const tried: { name: string; error: string }[] = [];
  for (const name of candidates) {
    try {
      const { tf, device } = await startBackend(name);
      const reason = forced
        ? `forced by HYPERGPU_BACKEND=${forced}`
        : tried.length > 0
          ? tried.map((t) => `${t.name}: ${t.error}`).join('; ')
          : prefer === name && name !== BACKEND_ORDER[0]
            ? `preferred by caller`
            : 'fastest available';
      return { tf, info: { name, device, reason, tried } };
    } catch (error) {
      tried.push({ name: packageOf(name), error: shortError(error) });
    }
  }
  const detail = tried.map((t) => `${t.name}: ${t.error}`).join('; ');
  throw new Error(`no TensorFlow.js backend could start (${detail})`);
}

function packageOf(name: BackendName): string {
  switch (name) {
    case 'tensorflow-gpu':
      return '@tensorflow/tfjs-node-gpu';
    case 'tensorflow':
      return '@tensorflow/tfjs-node';
    case 'wasm':
      return '@tensorflow/tfjs-backend-wasm';
    case 'cpu':
      return 'cpu';
  }
}

function shortError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') {
      const missing = /Cannot find module '([^']+)'/.exec(error.message)?.[1];
      // A missing native addon (package present, libtensorflow absent) is a different fix from a
      // missing package; say which.
      return missing && !missing.startsWith('@tensorflow/') ? `broken install (${missing} missing)` : 'not installed';
    }
    return error.message.split('\n')[0];
  }
  return String(error);
}

function cpuModel(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model?.trim() || 'unknown CPU';
  return `${model}, ${cpus.length} cores`;
}

function cudaDevice(): string | null {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], {
      encoding: 'utf8',
      timeout: 5000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const names = out.split('\n').map((l) => l.trim()).filter(Boolean);
    if (names.length > 0) return names.join(', ');
  } catch {
    // No nvidia-smi: fall back to the driver's proc entry below.
  }
  return existsSync('/proc/driver/nvidia/version') ? 'NVIDIA GPU' : null;
}

type ErrorEvent = 'uncaughtException' | 'unhandledRejection';
type Listener = (...args: unknown[]) => void;
const ERROR_EVENTS: ErrorEvent[] = ['uncaughtException', 'unhandledRejection'];

function listenersOf(event: ErrorEvent): Listener[] {
  // process.listeners has one overload per event name; a union of names matches none of them.
  return (process.listeners as (name: string) => Listener[])(event);
}

function processErrorListeners(): Map<ErrorEvent, Listener[]> {
  return new Map(ERROR_EVENTS.map((event) => [event, listenersOf(event)]));
}

/**
 * The wasm backend's Emscripten runtime, when it starts in Node, adds process-wide 'uncaughtException' and
 * 'unhandledRejection' listeners that rethrow. They override the application's own handlers (a logged
 * and survived error becomes a crash) and kill vitest workers instead of reporting the test. Node's
 * defaults do the same job, so remove exactly those listeners again.
 */
function removeEmscriptenListeners(before: Map<ErrorEvent, Listener[]>): void {
  for (const event of ERROR_EVENTS) {
    const previous = before.get(event) ?? [];
    for (const listener of listenersOf(event)) {
      if (previous.includes(listener)) continue;
      if (/ExitStatus|throw reason/.test(listener.toString())) process.removeListener(event, listener);
    }
  }
}

async function startBackend(name: BackendName): Promise<{ tf: Tf; device: string }> {
  switch (name) {
    case 'tensorflow-gpu': {
      // Check for a device before loading: tfjs-node-gpu on a machine without CUDA fails inside
      // libtensorflow after seconds of loading, with a less helpful message.
      requireFromHere.resolve('@tensorflow/tfjs-node-gpu');
      const gpu = cudaDevice();
      if (!gpu) throw new Error('no CUDA device (no nvidia-smi, no /proc/driver/nvidia)');
      const tf = requireFromHere('@tensorflow/tfjs-node-gpu') as Tf;
      tf.enableProdMode();
      if (!(await tf.setBackend('tensorflow'))) throw new Error('setBackend(tensorflow) failed');
      await tf.ready();
      return { tf, device: `CUDA ${gpu}` };
    }
    case 'tensorflow': {
      const tf = requireFromHere('@tensorflow/tfjs-node') as Tf;
      tf.enableProdMode();
      if (!(await tf.setBackend('tensorflow'))) throw new Error('setBackend(tensorflow) failed');
      await tf.ready();
      return { tf, device: `libtensorflow CPU, ${cpuModel()}` };
    }
    case 'wasm': {
      const tf = requireFromHere('@tensorflow/tfjs') as Tf;
      const wasm = requireFromHere('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
      tf.enableProdMode();
      // In Node the .wasm binaries are read from disk; point tfjs at the package's own dist folder so
      // this works whatever the working directory is.
      const distDir = path.dirname(requireFromHere.resolve('@tensorflow/tfjs-backend-wasm'));
      wasm.setWasmPaths(distDir + path.sep);
      const listenersBefore = processErrorListeners();
      try {
        if (!(await tf.setBackend('wasm'))) throw new Error('setBackend(wasm) failed');
        await tf.ready();
      } finally {
        removeEmscriptenListeners(listenersBefore);
      }
      registerWasmConv2DBackpropFilter(tf);
      const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
      const threads = wasm.getThreadsCount();
      const features = `${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'}`;
      return { tf, device: `${features}, ${cpuModel()}` };
    }
    case 'cpu': {
      const tf = requireFromHere('@tensorflow/tfjs') as Tf;
      tf.enableProdMode();
      if (!(await tf.setBackend('cpu'))) throw new Error('setBackend(cpu) failed');
      await tf.ready();
      return { tf, device: `pure JavaScript, ${cpuModel()}` };
    }
  }
}
