// One worker_threads worker behind a request/reply interface: how every worker in the server is started, asked,
// restarted and stopped. The aggregator pool runs one supervisor per kernel thread; the evaluator runs one.
//
// What a supervisor owns, so its owners do not:
// - the bootstrap (spawnWorker in bootstrap.ts): one way to start an entry, whether it is TypeScript under tsx's
//   loader (development, tests) or plain JavaScript (a bundled server);
// - start-up: the worker is usable once it says 'ready'; a fault, an uncaught error, an exit or a timeout
//   before that rejects start() with `<name> failed to start: <reason>`;
// - correlation: request() gives each message an id and resolves with the reply that carries it;
// - death: when a worker exits, every call it had not answered rejects with `<name> crashed: <reason>` (or
//   `<name> was stopped: <reason>` when the supervisor stopped it), never hangs;
// - restarts, as the owner asks: 'immediately' after a ready worker crashes (a pool that must stay warm), or
//   'on-next-call'. A worker that dies before it is ready is never restarted at once, so a broken entry cannot
//   spin: the next call tries one fresh start and rejects with the reason if that fails too;
// - shutdown: close() rejects what is pending, terminates the worker and resolves once it has exited.
//
// The protocol stays the owner's: interpret() maps each message from the worker to one of a few outcomes.
// Hot path: when the worker is ready, request() posts synchronously (no await before postMessage), so the
// worker starts while the caller goes on; a request without a timeout allocates no timer.

import { Worker, type ResourceLimits, type TransferListItem } from 'node:worker_threads';
import { isWorkerMemoryReport, type WorkerMemoryReport } from '../../../ml/worker-bootstrap';
import type { WorkerMemory } from '../../core/ports';
import { spawnWorker } from './bootstrap';

export { spawnWorker } from './bootstrap';

/** What one message from the worker means, as the owner's interpret() reads it. */
export type WorkerMessage<Reply> =
  /** Start-up is done: requests may be posted. */
  | { type: 'ready' }
  | { type: 'reply'; id: number; value: Reply }
  /** The request failed; the worker stays up. */
  | { type: 'reply-error'; id: number; message: string }
  /**
   * A failure that belongs to no request. Before 'ready' it fails the start (and the worker is terminated);
   * after it, it is kept as the reason to report should the worker die.
   */
  | { type: 'fault'; message: string }
  /** A log line, a stray message: nothing for the supervisor to do. */
  | { type: 'ignore' };

export const IGNORE: WorkerMessage<never> = Object.freeze({ type: 'ignore' });
export const READY: WorkerMessage<never> = Object.freeze({ type: 'ready' });

export interface WorkerSupervisorOptions<Reply> {
  /** The entry module: a .ts file (run through tsx's loader) or a plain .js/.mjs/.cjs one (a bundled build). */
  entry: URL;
  /** Names the worker in errors and log lines ('aggregator worker 0'); also the thread's name. */
  name: string;
  /** The worker's `workerData`, given to every worker this supervisor starts. */
  workerData?: unknown;
  /** Posted to every new worker right after it is spawned, before it is ready (e.g. a shared memory). */
  initMessage?: unknown;
  /** Reads one message from the worker. May have side effects (logging, noting what 'ready' reported). */
  interpret(message: unknown): WorkerMessage<Reply>;
  /** A worker that has not said 'ready' by then is terminated and its start fails. */
  startTimeoutMs: number;
  /** What follows the crash of a worker that was ready (see the file comment). */
  restart: 'immediately' | 'on-next-call';
  log?: (line: string) => void;
  /** After a ready worker dies on its own (not by close() or a timeout), with the error its calls got. */
  onCrash?(error: Error): void;
  /** Where the worker's own memory is posted for /metrics; none: not reported. */
  memoryBoard?: WorkerMemoryBoard;
  /** How often the worker reports it (default WORKER_MEMORY_REPORT_MS); it also reports once as it starts. */
  memoryReportMs?: number;
  /**
   * The worker's heap limits. Its young generation takes effect only where the process's --max-semi-space-size
   * does not override it: the server resets that flag for its workers (releaseWorkerHeapFlags in node-flags.ts).
   */
  resourceLimits?: ResourceLimits;
}

/**
 * The heap limits of the threads that run tfjs (the evaluator, the auditor). A young generation of up to 16 MB, split
 * by V8 into its semi-spaces, holds what one evaluation batch or one recomputation allocates, so it dies there
 * instead of being promoted and piling up in the old generation until a mark-compact (node-flags.ts,
 * WORKER_HEAP_FLAG_RESETS). Measured in the soak: the auditor's heap stayed at 39-41 MB instead of climbing 28 -> 57.
 */
export const TFJS_WORKER_LIMITS: ResourceLimits = Object.freeze({ maxYoungGenerationSizeMb: 16 });

/** How often a supervised worker reports its isolate's memory when a board is given. */
export const WORKER_MEMORY_REPORT_MS = 10_000;

/**
 * The latest memory report of each live worker of one server, by name: what /metrics shows per thread. A worker
 * leaves the board when it exits (an evaluator stopped with its session is not still counted).
 */
export class WorkerMemoryBoard {
  private readonly latest = new Map<string, WorkerMemory>();
  set(worker: string, report: WorkerMemoryReport): void {
    this.latest.set(worker, { worker, heapUsed: report.heapUsed, heapTotal: report.heapTotal, external: report.external, arrayBuffers: report.arrayBuffers });
  }
  delete(worker: string): void {
    this.latest.delete(worker);
  }
  snapshot(): WorkerMemory[] {
    return [...this.latest.values()];
  }
}

export interface RequestOptions {
  /** Moved, not copied, to the worker. */
  transfer?: readonly TransferListItem[];
  /**
   * No reply by then rejects the call and stops the worker (whatever it is stuck on would also hold every later
   * request); the next call starts a new one. Default: none.
   */
  timeoutMs?: number;
  /** What the request is called in the timeout error ('evaluation'). Default 'request'. */
  what?: string;
}

export type WorkerState = 'down' | 'starting' | 'ready' | 'closed';

interface Pending<Reply> {
  resolve(value: Reply): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | null;
}

/** One spawned worker thread, from spawn to exit. A supervisor runs one at a time (an old one may still be exiting). */
interface Generation<Reply> {
  readonly worker: Worker;
  state: 'starting' | 'ready' | 'exited';
  readonly pending: Map<number, Pending<Reply>>;
  /** Settles start(): resolved on 'ready', rejected once with the first reason the start failed. */
  readonly ready: Promise<void>;
  settleReady: { resolve(): void; reject(error: Error): void } | null;
  startTimer: NodeJS.Timeout | null;
  /** The first uncaught error (the 'error' event) or undecodable message. */
  error: string | null;
  /** The latest fault the worker reported. */
  fault: string | null;
  /** Set when the supervisor stops the worker itself: its exit is then not a crash. */
  stopReason: string | null;
  readonly exited: Promise<void>;
}

/** Ids go on the wire as unsigned 32-bit integers (the aggregator protocol checks it). */
const MAX_ID = 0xffff_ffff;

export class WorkerSupervisor<Request, Reply> {
  private current: Generation<Reply> | null = null;
  /** Every generation that has not exited yet, the current one included. */
  private readonly live = new Set<Generation<Reply>>();
  private nextId = 1;
  /** What pending calls were rejected with at close(); null while open. */
  private closedWith: Error | null = null;
  private readonly log: (line: string) => void;

  constructor(private readonly options: WorkerSupervisorOptions<Reply>) {
    this.log = options.log ?? (() => {});
  }

  get name(): string {
    return this.options.name;
  }

  get state(): WorkerState {
    if (this.closedWith) return 'closed';
    if (!this.current) return 'down';
    return this.current.state === 'ready' ? 'ready' : 'starting';
  }

  /** Starts a worker unless one is starting or ready; resolves when it is ready. */
  start(): Promise<void> {
    if (this.closedWith) return Promise.reject(new Error(`${this.name} is closed`));
    if (this.current) return this.current.ready;
    return this.spawn();
  }

  /**
   * Posts build(id) to the worker and resolves with the reply carrying that id. Starts the worker first when
   * it is down (and rejects with the start's failure if it cannot).
   */
  request(build: (id: number) => Request, options: RequestOptions = {}): Promise<Reply> {
    const generation = this.current;
    if (generation?.state === 'ready') return this.post(generation, build, options);
    if (this.closedWith) return Promise.reject(new Error(`${this.name} is closed`));
    return this.start().then(() => {
      const now = this.current;
      if (!now || now.state !== 'ready') throw new Error(`${this.name} stopped before the request could be posted`);
      return this.post(now, build, options);
    });
  }

  /** Test hook: terminates the current worker the way a crash would. Resolves once its exit is handled. */
  async crashForTest(): Promise<void> {
    const generation = this.current;
    if (!generation) return;
    void generation.worker.terminate();
    await generation.exited;
  }

  /**
   * Rejects every pending call with `error` (default `<name> was closed`), terminates the worker and resolves
   * once it has exited. Later calls reject. Idempotent.
   */
  async close(error?: Error): Promise<void> {
    if (!this.closedWith) {
      this.closedWith = error ?? new Error(`${this.name} was closed`);
      this.current = null;
      for (const generation of this.live) {
        this.failStart(generation, this.closedWith);
        this.failPending(generation, this.closedWith);
        if (generation.startTimer) clearTimeout(generation.startTimer);
        void generation.worker.terminate();
      }
    }
    await Promise.all([...this.live].map((generation) => generation.exited));
  }

  private post(generation: Generation<Reply>, build: (id: number) => Request, options: RequestOptions): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const id = this.nextId;
      this.nextId = id >= MAX_ID ? 1 : id + 1;
      const pending: Pending<Reply> = { resolve, reject, timer: null };
      generation.pending.set(id, pending);
      if (options.timeoutMs !== undefined) {
        const ms = options.timeoutMs;
        pending.timer = setTimeout(() => this.timeOut(generation, id, ms, options.what ?? 'request'), ms);
        pending.timer.unref();
      }
      try {
        generation.worker.postMessage(build(id), options.transfer);
      } catch (error) {
        // A message that cannot be cloned, or a worker that is already gone.
        generation.pending.delete(id);
        if (pending.timer) clearTimeout(pending.timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  private timeOut(generation: Generation<Reply>, id: number, ms: number, what: string): void {
    const pending = generation.pending.get(id);
    if (!pending) return;
    generation.pending.delete(id);
    pending.reject(new Error(`${what} timed out after ${ms} ms; ${this.name} was stopped and the next call starts a new one`));
    this.stop(generation, `${what} ${id} took longer than ${ms} ms`);
  }

  /** Stops a worker on purpose: its calls reject with `was stopped`, and its exit is not counted as a crash. */
  private stop(generation: Generation<Reply>, reason: string): void {
    if (generation.state === 'exited' || generation.stopReason) return;
    generation.stopReason = reason;
    if (this.current === generation) this.current = null;
    this.log(`${this.name} was stopped: ${reason}; the next call starts a new one`);
    void generation.worker.terminate();
  }

  private spawn(): Promise<void> {
    let worker: Worker;
    try {
      worker = spawnWorker(this.options.entry, { name: this.name, workerData: this.options.workerData, memoryReportMs: this.options.memoryBoard ? (this.options.memoryReportMs ?? WORKER_MEMORY_REPORT_MS) : undefined, resourceLimits: this.options.resourceLimits });
    } catch (error) {
      return Promise.reject(new Error(`${this.name} failed to start: ${messageOf(error)}`));
    }
    let settleReady: Generation<Reply>['settleReady'] = null;
    const ready = new Promise<void>((resolve, reject) => {
      settleReady = { resolve, reject };
    });
    // A failed start nobody waits for (an immediate restart) must not become an unhandled rejection.
    ready.catch(() => {});
    let markExited = (): void => {};
    const exited = new Promise<void>((resolve) => {
      markExited = resolve;
    });
    const generation: Generation<Reply> = {
      worker,
      state: 'starting',
      pending: new Map(),
      ready,
      settleReady,
      startTimer: null,
      error: null,
      fault: null,
      stopReason: null,
      exited,
    };
    this.current = generation;
    this.live.add(generation);

    generation.startTimer = setTimeout(() => {
      this.failStart(generation, this.startError(`did not start within ${this.options.startTimeoutMs} ms`));
      void worker.terminate();
    }, this.options.startTimeoutMs);
    generation.startTimer.unref();

    worker.on('message', (raw: unknown) => this.onMessage(generation, raw));
    worker.on('error', (error: Error) => {
      generation.error ??= error.message;
    });
    worker.on('messageerror', (error: Error) => {
      generation.error ??= `undecodable message from the worker (${error.message})`;
      void worker.terminate();
    });
    worker.once('exit', (code: number) => {
      this.onExit(generation, code);
      markExited();
    });
    if (this.options.initMessage !== undefined) worker.postMessage(this.options.initMessage);
    return ready;
  }

  private onMessage(generation: Generation<Reply>, raw: unknown): void {
    if (isWorkerMemoryReport(raw)) {
      if (this.current === generation) this.options.memoryBoard?.set(this.name, raw);
      return;
    }
    const message = this.options.interpret(raw);
    switch (message.type) {
      case 'ready':
        if (generation.state !== 'starting' || !generation.settleReady) return;
        generation.state = 'ready';
        if (generation.startTimer) clearTimeout(generation.startTimer);
        generation.settleReady.resolve();
        generation.settleReady = null;
        return;
      case 'reply':
      case 'reply-error': {
        const pending = generation.pending.get(message.id);
        if (!pending) return; // timed out earlier
        generation.pending.delete(message.id);
        if (pending.timer) clearTimeout(pending.timer);
        if (message.type === 'reply') pending.resolve(message.value);
        else pending.reject(new Error(message.message));
        return;
      }
      case 'fault':
        generation.fault = message.message;
        if (generation.state === 'starting') {
          this.failStart(generation, this.startError(message.message));
          void generation.worker.terminate();
        }
        return;
      case 'ignore':
        return;
    }
  }

  private onExit(generation: Generation<Reply>, code: number): void {
    const wasReady = generation.state === 'ready';
    generation.state = 'exited';
    this.live.delete(generation);
    if (generation.startTimer) clearTimeout(generation.startTimer);
    if (this.current === generation) this.current = null;
    if (!this.current) this.options.memoryBoard?.delete(this.name);
    const cause = generation.error ?? generation.fault;
    const reason = cause ? `${cause} (exit code ${code})` : `exited with code ${code}`;
    this.failStart(generation, this.startError(reason));
    if (this.closedWith) return; // close() has rejected everything already
    if (generation.stopReason) {
      this.failPending(generation, new Error(`${this.name} was stopped: ${generation.stopReason}`));
      return;
    }
    if (!wasReady) return; // its start() rejected; the next call tries once more
    const error = new Error(`${this.name} crashed: ${reason}`);
    this.failPending(generation, error);
    const restarting = this.options.restart === 'immediately';
    this.log(`${error.message}; its pending calls were rejected, ${restarting ? 'starting a replacement' : 'the next call starts a new one'}`);
    this.options.onCrash?.(error);
    if (restarting && !this.current) {
      this.spawn().catch((startError: unknown) => this.log(`${this.name}: the replacement did not start: ${messageOf(startError)}`));
    }
  }

  private startError(reason: string): Error {
    return new Error(`${this.name} failed to start: ${reason}`);
  }

  private failStart(generation: Generation<Reply>, error: Error): void {
    const settle = generation.settleReady;
    if (!settle) return;
    generation.settleReady = null;
    settle.reject(error);
  }

  private failPending(generation: Generation<Reply>, error: Error): void {
    const calls = [...generation.pending.values()];
    generation.pending.clear();
    for (const call of calls) {
      if (call.timer) clearTimeout(call.timer);
      call.reject(error);
    }
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
