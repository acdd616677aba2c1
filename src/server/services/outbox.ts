// Delivers committed events to their consumers. Each consumer has its own durable cursor and must be
// idempotent: after a crash it is handed again what it may have seen (at-least-once), never less. Events
// are delivered from memory right after their commit; the table is read only to catch up at start.
// A new consumer (settlement, a metrics exporter) is one more OutboxConsumer in runtime.ts.
import type { OutboxRecord } from '../core/engine/committed';
import type { Clock, TrainingRepository } from '../core/ports';

export interface OutboxConsumer {
  readonly name: string;
  /** Handles one committed event; may be called again for the same one after a restart. */
  handle(record: OutboxRecord, catchingUp: boolean): Promise<void> | void;
  /** Releases what the consumer holds (a worker thread), after its last delivery. */
  close?(): Promise<void>;
}

interface ConsumerState {
  consumer: OutboxConsumer;
  /** Highest id handled. */
  position: number;
  /** Highest id saved durably. */
  saved: number;
  queue: OutboxRecord[];
  busy: boolean;
}

const PAGE = 500;

export class OutboxDispatcher {
  private readonly consumers: ConsumerState[];
  private cancelSave: (() => void) | null = null;
  private closed = false;

  constructor(
    private readonly repo: TrainingRepository,
    private readonly clock: Clock,
    consumers: OutboxConsumer[],
    private readonly onError: (consumer: string, error: unknown) => void,
    /** Cursors are saved at most this often (and at close): redelivery after a crash is harmless. */
    private readonly saveEveryMs = 1000,
  ) {
    this.consumers = consumers.map((consumer) => ({ consumer, position: 0, saved: 0, queue: [], busy: false }));
  }

  /** Reads each consumer's cursor and hands it what it missed while the coordinator was down. */
  async start(): Promise<void> {
    for (const c of this.consumers) {
      c.position = c.saved = await this.repo.outboxCursor(c.consumer.name);
      for (;;) {
        const page = await this.repo.readOutbox(c.position, PAGE);
        for (const record of page) await this.handle(c, record, true);
        if (page.length < PAGE) break;
      }
    }
    await this.saveCursors();
    this.scheduleSave();
  }

  private scheduleSave(): void {
    this.cancelSave = this.clock.setTimeout(() => {
      void this.saveCursors()
        .catch((error) => this.onError('cursor store', error))
        .finally(() => {
          if (!this.closed) this.scheduleSave();
        });
    }, this.saveEveryMs);
  }

  /** Records just committed, in id order. */
  deliver(records: readonly OutboxRecord[]): void {
    if (this.closed || records.length === 0) return;
    for (const c of this.consumers) {
      for (const record of records) if (record.id > c.position) c.queue.push(record);
      void this.drain(c);
    }
  }

  private async drain(c: ConsumerState): Promise<void> {
    if (c.busy) return;
    c.busy = true;
    try {
      while (c.queue.length > 0) await this.handle(c, c.queue.shift()!, false);
    } finally {
      c.busy = false;
    }
  }

  private async handle(c: ConsumerState, record: OutboxRecord, catchingUp: boolean): Promise<void> {
    if (record.id <= c.position) return;
    try {
      await c.consumer.handle(record, catchingUp);
    } catch (error) {
      // A consumer's failure is its own: it is logged and the consumer moves on (each consumer is idempotent
      // and its work is recoverable from the ledger; a stuck consumer must not hold back the others).
      this.onError(c.consumer.name, error);
    }
    c.position = record.id;
  }

  /** Saves advanced cursors and drops rows every consumer is past. */
  async saveCursors(): Promise<void> {
    for (const c of this.consumers) {
      if (c.position > c.saved) {
        const position = c.position;
        await this.repo.saveOutboxCursor(c.consumer.name, position);
        c.saved = Math.max(c.saved, position);
      }
    }
    const low = Math.min(...this.consumers.map((c) => c.saved));
    if (Number.isFinite(low) && low > 0) await this.repo.pruneOutbox(low);
  }

  /** Waits for queued deliveries, saves the cursors and stops. */
  async close(): Promise<void> {
    this.closed = true;
    this.cancelSave?.();
    await Promise.all(this.consumers.map((c) => this.drain(c)));
    while (this.consumers.some((c) => c.busy || c.queue.length > 0)) await new Promise<void>((resolve) => this.clock.setTimeout(resolve, 5));
    await this.saveCursors();
    for (const c of this.consumers) await c.consumer.close?.().catch((error) => this.onError(c.consumer.name, error));
  }
}
