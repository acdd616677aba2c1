// Checkpoints: one at a time, from a copy of the model, so training goes on while the file is written.
// An outbox consumer (every `checkpointEvery` committed rounds) and the engine's final and shutdown
// checkpoints share it. After a checkpoint is recorded, the journal entries it covers are compacted.
import type { OutboxRecord } from '../core/engine/committed';
import type { CheckpointStore, Clock, TrainingRepository, UpdateJournal } from '../core/ports';
import type { CheckpointRecord, SessionConfig } from '../core/types';
import type { ModelStore } from './model-store';
import type { OutboxConsumer } from './outbox';

export interface CheckpointerDeps {
  repo: TrainingRepository;
  checkpoints: CheckpointStore;
  journal: UpdateJournal;
  model: ModelStore;
  clock: Clock;
  /** The session's config and durable round as the engine knows them now. */
  session(sessionId: number): { config: SessionConfig; round: number } | null;
  log(level: 'info' | 'warn' | 'error', message: string): void;
}

export class Checkpointer implements OutboxConsumer {
  readonly name = 'checkpointer';
  private chain: Promise<unknown> = Promise.resolve();
  private readonly lastRound = new Map<number, number>();

  constructor(private readonly deps: CheckpointerDeps) {}

  async handle(record: OutboxRecord): Promise<void> {
    const event = record.event;
    if (event.kind !== 'round-committed') return;
    const session = this.deps.session(event.sessionId);
    if (!session) return;
    const last = await this.lastCheckpointRound(event.sessionId);
    if (event.round - last >= session.config.checkpointEvery) await this.write(event.sessionId);
  }

  /** Writes a checkpoint of the model as it is now, unless one at this round exists. */
  write(sessionId: number): Promise<void> {
    const run = this.chain.then(() => this.writeNow(sessionId));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async lastCheckpointRound(sessionId: number): Promise<number> {
    let last = this.lastRound.get(sessionId);
    if (last === undefined) {
      last = (await this.deps.repo.latestCheckpoint(sessionId))?.round ?? 0;
      this.lastRound.set(sessionId, last);
    }
    return last;
  }

  private async writeNow(sessionId: number): Promise<void> {
    const session = this.deps.session(sessionId);
    const model = this.deps.model.model;
    if (!session || !model || model.sessionId !== sessionId) return;
    const round = session.round;
    if ((await this.lastCheckpointRound(sessionId)) === round && round > 0) return;
    const copy = this.deps.model.snapshot(sessionId);
    this.lastRound.set(sessionId, round);
    const written = await this.deps.checkpoints.write({
      sessionId,
      round,
      modelVersion: copy.modelVersion,
      params: copy.params,
      optimizerState: copy.optimizer.slots,
      optimizerStep: copy.optimizer.step,
    });
    const row: CheckpointRecord = { sessionId, round, modelVersion: copy.modelVersion, sha256: written.sha256, path: written.path, bytes: written.bytes, createdAt: this.deps.clock.now() };
    await this.deps.repo.recordCheckpoint(row);
    // Everything up to this version is inside a durable checkpoint now.
    await this.deps.journal.compact(sessionId, copy.modelVersion);
    this.deps.log('info', `checkpoint at round ${round} (model version ${copy.modelVersion}): ${(written.bytes / 1e6).toFixed(2)} MB, sha256 ${written.sha256.slice(0, 12)}…`);
  }

  /** Waits for the checkpoint being written, if any. */
  idle(): Promise<void> {
    return this.chain.then(() => undefined);
  }
}
