// The agent's training thread, seen from its main thread. Training used to run on the thread that sends
// heartbeats, so one long step (4 agents on 2 cores, a CNN, a GC pause) could silence a healthy node for most of a
// second and get it failed. Now tfjs, the dataset and the rounds run in a worker_thread (training-worker-main.ts)
// and the main thread keeps only the link: heartbeats, the watchdog, control messages. The model frame's buffer is
// transferred in and the update frame's buffer out, so a round costs no copy of the parameters either way.
import type { Worker } from 'node:worker_threads';

import type { BackendInfo, BackendName } from '../ml/backend';
import { spawnWorker } from '../ml/worker-bootstrap';
import type { Assignment, SessionDescriptor } from '../protocol/messages';
import type { ModelFrame } from './inbound';
import type { Simulation } from './simulation';
import { isFromTrainingThread, type FromTrainingThread, type ToTrainingThread, type TrainingThreadData } from './training-thread-protocol';

export interface TrainingThreadOptions {
  prefer?: BackendName;
  /** Datasets configured on this machine: name -> folder. */
  datasets: ReadonlyMap<string, string>;
  microBatch?: number;
  simulate?: Simulation;
  log: (line: string) => void;
  /** Prepared for a session: the agent says 'ready'. */
  onReady(sessionId: number): void;
  /** A sealed gradient frame to send, in a buffer this thread now owns. */
  onUpdate(bytes: Uint8Array, round: number): void;
  onRound(record: { durationMs: number; computeMs: number; samples: number; loss: number }): void;
  /** The thread died (a crash, an out-of-memory kill); the agent cannot train without it. */
  onExit(reason: string): void;
  /** Worker entry; default src/agent/training.worker.ts next to this file (a bundled agent: its .js file). */
  entry?: URL;
}

const DEFAULT_ENTRY = new URL('./training.worker.ts', import.meta.url);

export class TrainingThread {
  private worker: Worker | null = null;
  private round: number | null = null;
  private speed = 0;
  private stopping = false;
  private calibrating: { resolve(v: number): void; reject(e: Error): void } | null = null;
  private stopped: (() => void) | null = null;

  constructor(private readonly options: TrainingThreadOptions) {}

  /** The round being trained (for heartbeats), null between rounds. Read on the main thread, never blocked. */
  get currentRound(): number | null {
    return this.round;
  }

  get samplesPerSecond(): number {
    return this.speed;
  }

  /** Starts the thread; resolves with the backend it chose once tfjs is loaded there. */
  start(): Promise<BackendInfo> {
    const data: TrainingThreadData = { v: 1, prefer: this.options.prefer, datasets: [...this.options.datasets], microBatch: this.options.microBatch, simulate: this.options.simulate };
    const worker = spawnWorker(this.options.entry ?? DEFAULT_ENTRY, { name: 'agent training thread', workerData: data });
    this.worker = worker;
    return new Promise<BackendInfo>((resolve, reject) => {
      let started = false;
      worker.on('message', (message: unknown) => {
        if (!isFromTrainingThread(message)) {
          this.options.log('training thread sent a message of an unknown protocol version; ignored');
          return;
        }
        if (message.type === 'init') {
          started = true;
          resolve(message.backend);
        } else if (message.type === 'init-error') {
          reject(new Error(`training thread failed to start: ${message.message}`));
        } else {
          this.handle(message);
        }
      });
      worker.on('error', (error) => {
        if (!started) reject(new Error(`training thread failed to start: ${error.message}`));
        else this.options.log(`training thread crashed: ${error.stack ?? error.message}`);
      });
      worker.on('exit', (code) => {
        this.worker = null;
        this.round = null;
        this.calibrating?.reject(new Error(`training thread exited (code ${code})`));
        this.calibrating = null;
        this.stopped?.();
        if (!started) reject(new Error(`training thread exited (code ${code}) before it started`));
        else if (!this.stopping) this.options.onExit(`training thread exited (code ${code})`);
      });
    });
  }

  /** Measures this machine's speed (samples/s) on a model, in the training thread. */
  calibrate(dataset = 'mnist', model: 'mlp' | 'cnn' | 'mlp2nn' = 'mlp'): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.calibrating = { resolve, reject };
      this.post({ v: 1, type: 'calibrate', dataset, model });
    });
  }

  join(session: SessionDescriptor | null): void {
    this.post({ v: 1, type: 'join', session });
  }

  /** Hands the frame's parameters to the thread: transferred when they own their buffer, else copied once. */
  onModelFrame(frame: ModelFrame): void {
    const v = frame.values;
    const owned = v.byteOffset === 0 && v.byteLength === v.buffer.byteLength && v.buffer instanceof ArrayBuffer;
    const values = owned ? v : v.slice();
    this.post({ v: 1, type: 'model', header: frame.header, values }, [values.buffer as ArrayBuffer]);
  }

  assign(assignment: Assignment): void {
    this.post({ v: 1, type: 'assign', assignment });
  }

  cancel(round: number): void {
    this.post({ v: 1, type: 'cancel', round });
  }

  /** The node id of the current link (null: not registered); an update computed for another id is dropped. */
  setNode(nodeId: number | null): void {
    this.post({ v: 1, type: 'node', nodeId });
  }

  /** Asks the thread to let go of tfjs and exit; terminates it if it has not within a second. */
  async stop(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.stopping = true;
    const exited = new Promise<void>((resolve) => (this.stopped = resolve));
    this.post({ v: 1, type: 'stop' });
    const timer = setTimeout(() => void worker.terminate(), 1000);
    await exited;
    clearTimeout(timer);
  }

  private post(message: ToTrainingThread, transfer: ArrayBuffer[] = []): void {
    this.worker?.postMessage(message, transfer);
  }

  private handle(message: Exclude<FromTrainingThread, { type: 'init' | 'init-error' }>): void {
    switch (message.type) {
      case 'log':
        this.options.log(message.line);
        return;
      case 'calibrated':
        this.speed = message.samplesPerSecond;
        this.calibrating?.resolve(message.samplesPerSecond);
        this.calibrating = null;
        return;
      case 'calibrate-error':
        this.calibrating?.reject(new Error(message.message));
        this.calibrating = null;
        return;
      case 'ready':
        this.options.onReady(message.sessionId);
        return;
      case 'update':
        this.options.onUpdate(message.bytes, message.round);
        return;
      case 'active':
        this.round = message.round;
        if (message.samplesPerSecond > 0) this.speed = message.samplesPerSecond;
        return;
      case 'round':
        this.options.onRound(message);
        return;
      case 'stopped':
        // The thread closes its port next and exits; 'exit' resolves stop().
        if (this.worker) void this.worker.terminate();
        return;
    }
  }
}
